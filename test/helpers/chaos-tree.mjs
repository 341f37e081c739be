// Trees of the kill -9 loop (see chaos-cycle.mjs): snapshots, their diff, waiting for two
// nodes to converge, and the copies kept under .mimic/diverged/.
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { CONVERGE_MS, waitFor } from './chaos-procs.mjs';

export const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/**
 * Files and folders below `root` (without the top-level .mimic unless `under` points into
 * it): path → { type, mode, size, mtimeMs, sha256 }.
 */
export async function snapshot(root) {
  const out = new Map();
  const visit = async (dir) => {
    let names;
    try {
      names = await readdir(join(root, dir));
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      if (rel === '.mimic' || rel === '.mimic-folder') continue;
      const st = await lstat(join(root, rel)).catch(() => null);
      if (!st) continue;
      if (st.isDirectory()) {
        out.set(rel, { type: 'dir', mode: st.mode & 0o7777 });
        await visit(rel);
      } else if (st.isFile()) {
        const data = await readFile(join(root, rel)).catch(() => null);
        if (!data) continue; // replaced or removed while we looked
        out.set(rel, {
          type: 'file',
          mode: st.mode & 0o7777,
          size: st.size,
          mtimeMs: Math.floor(st.mtimeMs),
          sha256: sha256(data),
        });
      } else {
        out.set(rel, { type: st.isSymbolicLink() ? 'symlink' : 'other', mode: st.mode & 0o7777 });
      }
    }
  };
  await visit('');
  return new Map([...out].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)));
}

export function diffLines(a, b, limit = 10) {
  const lines = [];
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (isDeepStrictEqual(a.get(p), b.get(p))) continue;
    lines.push(`${p}: ${JSON.stringify(a.get(p)) ?? 'absent'} vs ${JSON.stringify(b.get(p)) ?? 'absent'}`);
    if (lines.length >= limit) break;
  }
  return lines;
}

export async function waitConverged(want, got, details) {
  let diff = [];
  const t0 = Date.now();
  await waitFor(
    async () => {
      const a = await snapshot(want);
      const b = await snapshot(got);
      if (isDeepStrictEqual(a, b)) return true;
      diff = diffLines(a, b);
      return false;
    },
    CONVERGE_MS,
    `${got} to equal ${want}`,
    async () => `differences:\n  ${diff.join('\n  ')}\n${await details()}`,
  );
  return Date.now() - t0;
}

/** Files kept under `<dir>/.mimic/diverged/<term>/<path>[.N]`: { file, path, sha256 }. */
export async function divergedOf(dir, known) {
  const base = join(dir, '.mimic', 'diverged');
  const out = [];
  const visit = async (rel) => {
    let names;
    try {
      names = await readdir(join(base, rel));
    } catch {
      return;
    }
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(base, r));
      if (st.isDirectory()) await visit(r);
      else if (st.isFile()) {
        let path = r.slice(r.indexOf('/') + 1);
        if (!known.has(path) && /\.\d+$/.test(path)) path = path.replace(/\.\d+$/, '');
        out.push({ file: r, path, sha256: sha256(await readFile(join(base, r))) });
      }
    }
  };
  await visit('');
  return out;
}
