import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { waitFor } from './polling.js';

/*
 * What a replicated folder looks like, for comparing a primary with its mirrors.
 *
 * Files: mode, size, mtime (floored to the ms), content hash. Symlinks: the target and the
 * link's own mtime. Folders: mode, and their mtime only when asked for (`dirMtimes`), since a
 * folder's mtime moves whenever an entry is added or removed in it. The top-level `.mimic`
 * state folder and `.mimic-folder` marker (each node's own) are not part of the tree, unless
 * asked for (`withState`).
 */

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  size?: number;
  mtimeMs?: number;
  /** Content hash (hex), files only. */
  sha256?: string;
  target?: string;
}

/** Relative POSIX path → entry, in sorted path order. */
export type Tree = Map<string, TreeEntry>;

const hashCache = new Map<string, string>();

function versionKey(
  abs: string,
  st: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint },
) {
  return `${abs}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** sha256 of a file's content, read now (streamed, never the whole file in memory). */
export async function fileHashUncached(abs: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(abs, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** sha256 of a file's content, cached per (inode, size, mtime, ctime) so polling stays cheap. */
export async function fileHash(abs: string): Promise<string> {
  const before = await lstat(abs, { bigint: true });
  const key = versionKey(abs, before);
  const cached = hashCache.get(key);
  if (cached) return cached;
  const digest = await fileHashUncached(abs);
  const after = await lstat(abs, { bigint: true });
  if (versionKey(abs, after) === key) {
    if (hashCache.size > 10_000) hashCache.clear();
    hashCache.set(key, digest);
  }
  return digest;
}

export interface TreeOptions {
  /** Leave out paths for which this returns true (and, for folders, everything below). */
  ignore?: (rel: string) => boolean;
  /** Include folders' mtimes too. */
  dirMtimes?: boolean;
  /** Include the top-level `.mimic` folder and `.mimic-folder` marker too. */
  withState?: boolean;
}

/** The tree below `root`, without the top-level `.mimic` folder and `.mimic-folder` marker. */
export async function treeOf(
  root: string,
  { ignore, dirMtimes = false, withState = false }: TreeOptions = {},
): Promise<Tree> {
  const entries: [string, TreeEntry][] = [];
  const visit = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(join(root, dir));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      if ((!withState && (rel === '.mimic' || rel === '.mimic-folder')) || ignore?.(rel)) continue;
      const abs = join(root, rel);
      let st: Awaited<ReturnType<typeof lstat>>;
      try {
        st = await lstat(abs);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // vanished while walking
        throw err;
      }
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        entries.push([
          rel,
          dirMtimes ? { type: 'dir', mode, mtimeMs: Math.floor(st.mtimeMs) } : { type: 'dir', mode },
        ]);
        await visit(rel);
      } else if (st.isSymbolicLink()) {
        entries.push([
          rel,
          { type: 'symlink', mode, mtimeMs: Math.floor(st.mtimeMs), target: await readlink(abs) },
        ]);
      } else if (st.isFile()) {
        const sha256 = await fileHash(abs).catch(() => 'unreadable');
        entries.push([rel, { type: 'file', mode, size: st.size, mtimeMs: Math.floor(st.mtimeMs), sha256 }]);
      } else {
        entries.push([rel, { type: 'other', mode }]);
      }
    }
  };
  await visit('');
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return new Map(entries);
}

/** Content hash of every regular file below `dir` (everything included), keyed by relative path. */
export async function hashesBelow(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [rel, e] of await treeOf(dir, { withState: true }))
    if (e.type === 'file') out.set(rel, e.sha256!);
  return out;
}

/** Regular files below `dir` (everything included; relative paths, sorted), with their content. */
export async function filesUnder(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const [rel, e] of await treeOf(dir, { withState: true }))
    if (e.type === 'file') out.set(rel, await readFile(join(dir, rel)));
  return out;
}

/** A plain object, for `toEqual` diffs. */
export function treeObject(tree: Tree): Record<string, TreeEntry> {
  return Object.fromEntries(tree);
}

/** Human-readable differences (`expected` is the primary's tree), at most `limit` lines. */
export function diffTrees(expected: Tree, actual: Tree, limit = 20): string[] {
  const lines: string[] = [];
  const paths = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  for (const p of paths) {
    const e = expected.get(p);
    const a = actual.get(p);
    if (isDeepStrictEqual(e, a)) continue;
    lines.push(
      `${JSON.stringify(p)}: primary ${JSON.stringify(e) ?? 'absent'}, mirror ${JSON.stringify(a) ?? 'absent'}`,
    );
    if (lines.length >= limit) break;
  }
  return lines;
}

export interface ConvergeOptions extends TreeOptions {
  timeoutMs?: number;
  /** Extra text for the timeout message (agent logs). */
  details?: () => string | Promise<string>;
}

/**
 * Waits until the mirror's tree equals the primary's (modes and mtimes included); returns it.
 * On timeout the error lists the differences.
 */
export async function waitConverged(
  primaryDir: string,
  mirrorDir: string,
  opts: ConvergeOptions = {},
): Promise<Tree> {
  const { timeoutMs = 10_000, details, ...treeOpts } = opts;
  let last: string[] = [];
  return waitFor(
    async () => {
      const want = await treeOf(primaryDir, treeOpts);
      const got = await treeOf(mirrorDir, treeOpts);
      if (isDeepStrictEqual(want, got)) return want;
      last = diffTrees(want, got);
      return null;
    },
    timeoutMs,
    `${mirrorDir} to equal ${primaryDir}`,
    {
      intervalMs: 50,
      details: async () => `differences:\n  ${last.join('\n  ')}${details ? `\n${await details()}` : ''}`,
    },
  );
}

/** Writes `size` random bytes to `path` in 1 MiB pieces (never the whole file in memory). */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(1 << 20, size - done);
      await fh.write(randomBytes(n));
      done += n;
    }
  } finally {
    await fh.close();
  }
}
