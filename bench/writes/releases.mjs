// W7's release trees, deterministic (seeded): release 0 has `files` files of 1 KiB-1 MiB
// (lognormal, median 16 KiB) in files/10 nested folders; each later release rewrites ~5% of the
// files (half with new bytes and a new size, half with a few spans overwritten), removes and adds
// 5-15 files each, and renames one folder. New files carry their release's build time as
// mtime (an hour apart), so rsync's quick check sees them. Unchanged files are hard links to
// the previous release's, so the trees cost the disk little more than release 0.
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { byteStream, KiB, MiB, rng } from '../lib.mjs';

const EXTS = ['js', 'css', 'html', 'json', 'map', 'png', 'woff2', 'svg'];
/** Release n was built at BUILT_AT + n hours: its new files carry that mtime, as a build's do. */
const BUILT_AT = Date.UTC(2024, 0, 1) / 1000;
const sha1 = (buf) => createHash('sha1').update(buf).digest('hex');

/** The folder model: folders by index, each { parent (-1: the root), name }. */
const folderPath = (folders, i) =>
  i < 0 ? '' : join(folderPath(folders, folders[i].parent), folders[i].name);

/** A lognormal size around 16 KiB, within 1 KiB-1 MiB. */
const drawSize = (r) => Math.min(MiB, Math.max(KiB, Math.round(16 * KiB * Math.exp(1.5 * r.normal()))));

/**
 * What a release must look like: `dirs` maps each folder ('' the root) to the set of names in
 * it, `files` each file to { size, hash }.
 */
function manifestOf(folders, files) {
  const dirs = new Map([['', new Set()]]);
  const paths = folders.map((_, i) => folderPath(folders, i));
  for (const [i, f] of folders.entries()) {
    dirs.set(paths[i], dirs.get(paths[i]) ?? new Set());
    const up = f.parent < 0 ? '' : paths[f.parent];
    if (!dirs.has(up)) dirs.set(up, new Set());
    dirs.get(up).add(f.name);
  }
  const out = new Map();
  for (const f of files.values()) {
    const rel = join(paths[f.folder] ?? '', f.name);
    out.set(rel, { size: f.size, hash: f.hash });
    dirs.get(f.folder < 0 ? '' : paths[f.folder]).add(f.name);
  }
  return { dirs, files: out };
}

/**
 * Writes releases 0..`releases` under `root` (rel-0, rel-1, ...) and returns, for each,
 * { dir, manifest, note } (note: what changed from the release before, for the log).
 */
export function makeReleases(root, { files: count, releases }, seed = 7) {
  const r = rng(seed);
  const nFolders = Math.max(1, Math.round(count / 10));
  const folders = [];
  for (let i = 0; i < nFolders; i++) {
    const parent = i === 0 || r.next() < 0.2 ? -1 : r.int(i);
    folders.push({ parent, name: `d${String(i).padStart(3, '0')}` });
  }
  const files = new Map();
  let nextId = 0;
  const newFile = () => {
    const id = nextId++;
    const f = {
      id,
      folder: r.int(nFolders),
      name: `f${String(id).padStart(5, '0')}.${EXTS[id % EXTS.length]}`,
    };
    files.set(id, f);
    return f;
  };
  for (let i = 0; i < count; i++) newFile();

  const out = [];
  let prev = null;
  for (let n = 0; n <= releases; n++) {
    const bytes = byteStream(`w7-${seed}-rel${n}`);
    const fresh = new Map(); // id -> new content
    let note = `${count.toLocaleString('en')} files in ${nFolders} folders`;
    if (n === 0) {
      for (const f of files.values()) fresh.set(f.id, bytes.take(drawSize(r)));
    } else {
      const ids = [...files.keys()];
      const picked = r.pick(ids.length, Math.round(ids.length * 0.05) + 30).map((i) => files.get(ids[i]));
      const nRemove = 5 + r.int(11);
      const changed = picked.slice(0, picked.length - 30);
      for (const f of changed) {
        if (r.next() < 0.5) {
          fresh.set(f.id, bytes.take(drawSize(r)));
          continue;
        }
        const buf = readFileSync(join(prev.dir, f.rel));
        for (let k = 1 + r.int(4); k > 0; k--) {
          const len = Math.min(buf.length, 1 + r.int(4 * KiB));
          bytes.take(len).copy(buf, r.int(buf.length - len + 1));
        }
        fresh.set(f.id, buf);
      }
      for (const f of picked.slice(picked.length - nRemove)) files.delete(f.id);
      const nAdd = 5 + r.int(11);
      for (let i = 0; i < nAdd; i++) fresh.set(newFile().id, bytes.take(drawSize(r)));
      const moved = r.int(nFolders);
      const before = folderPath(folders, moved);
      folders[moved].name = `${folders[moved].name.split('-')[0]}-r${n}`;
      note = `${changed.length} changed, ${nRemove} removed, ${nAdd} added, ${before}/ renamed to ${folderPath(folders, moved)}/`;
    }

    const dir = join(root, `rel-${n}`);
    for (let i = 0; i < nFolders; i++) mkdirSync(join(dir, folderPath(folders, i)), { recursive: true });
    for (const f of files.values()) {
      const rel = join(folderPath(folders, f.folder), f.name);
      const content = fresh.get(f.id);
      if (content) {
        writeFileSync(join(dir, rel), content);
        utimesSync(join(dir, rel), BUILT_AT + n * 3600, BUILT_AT + n * 3600);
        f.size = content.length;
        f.hash = sha1(content);
      } else linkSync(join(prev.dir, f.rel), join(dir, rel));
      f.rel = rel;
    }
    prev = { dir, manifest: manifestOf(folders, files), note };
    out.push(prev);
  }
  return out;
}
