import type { Stats } from 'node:fs';
import { type FileHandle, lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createHasher, hashToHex, readChunks } from '@mimic/delta';

/** What a path is on disk right now, in the manifest's terms (no hash yet). */
export interface DiskEntry {
  kind: 'file' | 'dir' | 'symlink';
  size: number;
  mtimeMs: number;
  mode: number;
  ino: number;
  ctimeMs: number;
}

export function entryOf(st: Stats): DiskEntry | null {
  const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : null;
  if (!kind) return null; // sockets, fifos and devices are not replicated
  return {
    kind,
    size: kind === 'file' ? st.size : 0,
    mtimeMs: Math.floor(st.mtimeMs),
    mode: st.mode & 0o7777,
    ino: st.ino,
    ctimeMs: st.ctimeMs,
  };
}

/** lstat as a DiskEntry; null when the path is gone or of a kind that is not replicated. */
export async function statEntry(abs: string): Promise<DiskEntry | null> {
  try {
    return entryOf(await lstat(abs));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

export async function readLinkTarget(abs: string): Promise<string | null> {
  try {
    return await readlink(abs);
  } catch {
    return null;
  }
}

/** Files at least this large travel as deltas; their block signatures are kept. */
export const SIGNATURE_MIN_BYTES = 64 * 1024;

export interface FileVersion {
  entry: DiskEntry;
  hash: string;
  /** Wall-clock time the read began: a write older than this is in the hash. */
  readStartMs: number;
}

function sameVersion(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

/**
 * Reads a file once and hashes it. Returns null if the file changed while it was read (the
 * caller reads it again later) or vanished: a torn read is never reported as a version.
 */
export async function readFileVersion(abs: string): Promise<FileVersion | null> {
  const readStartMs = Date.now();
  let fh: FileHandle;
  try {
    fh = await open(abs, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return null;
    throw err;
  }
  try {
    const before = await fh.stat();
    if (!before.isFile()) return null;
    const hasher = createHasher();
    let length = 0;
    for await (const chunk of readChunks(fh, true)) {
      length += chunk.length;
      if (length > before.size) return null;
      hasher.update(chunk);
    }
    const after = await fh.stat();
    if (length !== before.size || !sameVersion(before, after)) return null;
    return { entry: entryOf(after)!, hash: hashToHex(hasher.digest()), readStartMs };
  } finally {
    await fh.close();
  }
}

/**
 * Walks the tree below `root`, parents before children, yielding relative POSIX paths.
 * `skip(rel, isDir)` prunes excluded paths (a skipped directory is not entered).
 */
export async function* walk(
  root: string,
  skip: (rel: string, isDir: boolean) => boolean,
): AsyncGenerator<{ rel: string; entry: DiskEntry }> {
  const queue: string[] = [''];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    let names: string[];
    try {
      names = await readdir(join(root, dir));
    } catch {
      continue; // vanished or unreadable: the watcher or the next scan will tell
    }
    for (const name of names) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      const entry = await statEntry(join(root, rel));
      if (!entry || skip(rel, entry.kind === 'dir')) continue;
      yield { rel, entry };
      if (entry.kind === 'dir') queue.push(rel);
    }
  }
}
