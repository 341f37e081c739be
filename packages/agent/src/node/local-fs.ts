import {
  type BigIntStats,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readlinkSync,
  readSync,
} from 'node:fs';
import { resolve } from 'node:path';
import { createHasher, hashToHex, IO_CHUNK, strongHash, yieldToLoop } from '@mimic/delta';
import { type DirListing, LSTAT, lstatDir } from '@mimic/fsmeta';
import type { Owner, PathAttrs } from '@mimic/wire';

/*
 * Local file system access for the agents. Calls are synchronous on purpose: a stat or a
 * 128 KiB read takes microseconds, far less than a trip through libuv's thread pool, and a
 * tree of 20,000 small files is dominated by exactly those trips. Long loops give the event
 * loop a turn every few MiB or few hundred entries (see `yieldToLoop`).
 */

/** What a path is on disk right now, in the manifest's terms (no hash yet). */
export interface DiskEntry {
  kind: 'file' | 'dir' | 'symlink';
  size: number;
  /** Whole milliseconds of the mtime, and the nanoseconds past them (0 to 999,999). */
  mtimeMs: number;
  mtimeNs: number;
  mode: number;
  uid: number;
  gid: number;
  ino: number;
  /** The file system's id: with `ino`, who else is the same file (a hard link). */
  dev: number;
  nlink: number;
  ctimeMs: number;
}

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/** ctime in ms as Node's own Stats.ctimeMs has it (a double), so records from either compare. */
const msOf = (ns: bigint): number => Number(ns / NS_PER_S) * 1e3 + Number(ns % NS_PER_S) / 1e6;

/**
 * A stat in the manifest's terms. Stats come as bigints because a double in ms cannot hold a
 * time to the nanosecond (its step near today is about 240 ns); the cost is ~0.1 µs a stat.
 */
export function entryOf(st: BigIntStats): DiskEntry | null {
  const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : null;
  if (!kind) return null; // sockets, fifos and devices are not replicated
  return {
    kind,
    size: kind === 'file' ? Number(st.size) : 0,
    mtimeMs: Number(st.mtimeNs / NS_PER_MS),
    mtimeNs: Number(st.mtimeNs % NS_PER_MS),
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    ino: Number(st.ino),
    dev: Number(st.dev),
    nlink: Number(st.nlink),
    ctimeMs: msOf(st.ctimeNs),
  };
}

/** lstat as a DiskEntry; null when the path is gone or of a kind that is not replicated. */
export function statEntrySync(abs: string): DiskEntry | null {
  const st = lstatSync(abs, { throwIfNoEntry: false, bigint: true });
  return st ? entryOf(st) : null;
}

/** fstat of an open file as a DiskEntry. */
export const fstatEntry = (fd: number): DiskEntry | null => entryOf(fstatSync(fd, { bigint: true }));

/** `statEntrySync`, also null when a parent is no longer a folder. */
function lookSync(abs: string): DiskEntry | null {
  try {
    return statEntrySync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

export async function statEntry(abs: string): Promise<DiskEntry | null> {
  return lookSync(abs);
}

export async function readLinkTarget(abs: string): Promise<string | null> {
  try {
    return readlinkSync(abs);
  } catch {
    return null;
  }
}

/** Files at least this large travel as deltas; their block signatures are kept. */
export const SIGNATURE_MIN_BYTES = 8 * 1024;

export interface FileVersion {
  entry: DiskEntry;
  hash: string;
  /** Wall-clock time the read began: a write older than this is in the hash. */
  readStartMs: number;
  /** The bytes read, when the caller asked to keep files of this size. */
  content?: Uint8Array;
}

/** What sameVersion compares: a DiskEntry or a manifest record. */
type Version = Pick<DiskEntry, 'kind' | 'size' | 'mtimeMs' | 'ctimeMs' | 'ino'>;

/** Same inode, kind, size, mtime and ctime: nothing was written there since (a chmod changes the ctime too). */
export function sameVersion(a: Version, b: Version | null): boolean {
  return (
    b !== null &&
    a.kind === b.kind &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.ino === b.ino
  );
}

/** What a meta op carries: permission bits, mtime, and owner, group and xattrs where known. */
export interface Meta extends PathAttrs {
  mode: number;
  mtimeMs: number;
}

/** Same owner and group (a link has no mode of its own to compare). */
export const sameOwner = (a: Owner, b: Owner): boolean => a.uid === b.uid && a.gid === b.gid;

/** Same attribute list; absent is none. */
export function sameXattrs(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/**
 * Same mode, mtime to the ns, owner and group: no meta op is needed between the two. Xattrs
 * are not in a stat (a change to them shows in the ctime); `sameXattrs` compares them.
 */
export function sameMeta(a: Meta, b: Meta): boolean {
  return (
    a.mode === b.mode && a.mtimeMs === b.mtimeMs && (a.mtimeNs ?? 0) === (b.mtimeNs ?? 0) && sameOwner(a, b)
  );
}

/** The owner fields of an entry, to spread into an op or a record. */
export const ownerOf = (e: Owner): Owner =>
  e.uid === undefined || e.gid === undefined ? {} : { uid: e.uid, gid: e.gid };

/**
 * Owner, mtime's ns and xattrs of an entry, to spread into an op or a record; each only when
 * there is something to say, so that the common op carries no more than it did.
 */
export function attrsOf(e: PathAttrs): PathAttrs {
  const out: PathAttrs = ownerOf(e);
  if (e.mtimeNs) out.mtimeNs = e.mtimeNs;
  if (e.xattrs !== undefined) out.xattrs = e.xattrs;
  return out;
}

const shared = Buffer.allocUnsafe(IO_CHUNK);
const BYTES_PER_TURN = 8 * 1024 * 1024;

/**
 * Reads a file of `size` bytes whole into a buffer of its own. One byte to spare shows a file
 * that grew since its stat (the result is then longer than `size`). A regular file's read comes
 * back short only at its end, so that needs no second read to find.
 */
function readWhole(fd: number, size: number): Buffer {
  const content = Buffer.allocUnsafe(size + 1);
  let length = 0;
  for (;;) {
    const want = content.length - length;
    const n = readSync(fd, content, length, want, length);
    length += n;
    if (n < want || length > size) return content.subarray(0, length);
  }
}

/**
 * Reads a file of `size` bytes through `hasher` in IO_CHUNK pieces; resolves with the bytes read,
 * stopping as soon as they are more than `size`. Small files (read without a pause) share one
 * buffer; a large one gets its own.
 */
async function readHashing(
  fd: number,
  size: number,
  hasher: ReturnType<typeof createHasher>,
): Promise<number> {
  const buf = size < BYTES_PER_TURN ? shared : Buffer.allocUnsafe(IO_CHUNK);
  let length = 0;
  let sinceTurn = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, IO_CHUNK, length);
    if (n === 0) return length;
    length += n;
    if (length > size) return length;
    hasher.update(buf.subarray(0, n));
    if (n < IO_CHUNK) return length;
    sinceTurn += n;
    if (sinceTurn >= BYTES_PER_TURN) {
      sinceTurn = 0;
      await yieldToLoop();
    }
  }
}

/** Never through a link, never waiting on a fifo (no effect on a regular file's reads). */
const OPEN_TO_READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Opens `abs` for reading; null when it is gone, a link, or below what is no longer a folder. */
export function openToRead(abs: string): number | null {
  try {
    return openSync(abs, OPEN_TO_READ);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return null;
    throw err;
  }
}

/**
 * Reads a file once and hashes it. Returns null if the file changed while it was read (the
 * caller reads it again later) or vanished: a torn read is never reported as a version.
 * A file of at most `keepBytes` is read into a buffer of its own, returned as `content`.
 * `known`: what an lstat of the path found a moment ago; the read is then of that version or
 * null (a change since, or a link put in its place, shows in the stat after the read).
 */
export async function readFileVersion(
  abs: string,
  keepBytes = 0,
  known?: DiskEntry,
): Promise<FileVersion | null> {
  const readStartMs = Date.now();
  const fd = openToRead(abs);
  return fd === null ? null : readOpenedVersion(fd, readStartMs, keepBytes, known);
}

/**
 * `readFileVersion` of a file already open (by `openToRead`, at `readStartMs`); `known` is then
 * what an fstat of `fd` found, or what an lstat found before it was opened. Closes `fd`.
 */
export async function readOpenedVersion(
  fd: number,
  readStartMs: number,
  keepBytes: number,
  known?: DiskEntry,
): Promise<FileVersion | null> {
  try {
    const before = known ?? fstatEntry(fd);
    if (before?.kind !== 'file') return null;
    if (before.size <= keepBytes) {
      const content = readWhole(fd, before.size);
      const after = fstatEntry(fd);
      if (content.length !== before.size || !sameVersion(before, after)) return null;
      // At most a part's worth: one call hashes it (xxh64, as the streaming hasher would).
      return { entry: after!, hash: hashToHex(strongHash(content)), readStartMs, content };
    }
    const hasher = createHasher();
    const length = await readHashing(fd, before.size, hasher);
    const after = fstatEntry(fd);
    if (length !== before.size || !sameVersion(before, after)) return null;
    return { entry: after!, hash: hashToHex(hasher.digest()), readStartMs };
  } finally {
    closeSync(fd);
  }
}

/**
 * One entry found by a walk. A null entry is a regular file (by its folder's listing) that the
 * caller's `noStat` let through without an lstat.
 */
export interface WalkEntry {
  rel: string;
  entry: DiskEntry | null;
}

/**
 * Walks the tree below `root`, parents before children, a folder's entries at a time, as
 * relative POSIX paths. `skip(rel, isDir)` prunes excluded paths (a skipped directory is not
 * entered). A regular file for which `noStat(rel)` holds comes without an lstat, with a null
 * entry (and without a `skip` check: the caller has that to do).
 */
export async function* walkFolders(
  root: string,
  skip: (rel: string, isDir: boolean) => boolean,
  noStat?: (rel: string) => boolean,
): AsyncGenerator<WalkEntry[]> {
  const queue: string[] = [''];
  const top = resolve(root);
  const prefix = top === '/' ? top : `${top}/`;
  let n = 0;
  while (queue.length > 0) {
    const dir = queue.shift()!;
    let listing: DirListing;
    try {
      listing = lstatDir(prefix + dir);
    } catch {
      continue; // vanished or unreadable: the watcher or the next scan will tell
    }
    const { names, stats } = listing;
    const found: WalkEntry[] = [];
    for (let i = 0; i < names.length; i++) {
      const rel = dir === '' ? names[i]! : `${dir}/${names[i]}`;
      const at = i * LSTAT.fields;
      const kind = KIND_OF[stats[at + LSTAT.kind]!]!;
      if (noStat && kind === 'file' && noStat(rel)) {
        found.push({ rel, entry: null });
        continue;
      }
      if (skip(rel, kind === 'dir')) continue;
      found.push({ rel, entry: listedEntry(kind, stats, at) });
      if (kind === 'dir') queue.push(rel);
      if (++n % 2048 === 0) await yieldToLoop();
    }
    yield found;
  }
}

const KIND_OF = ['file', 'dir', 'symlink'] as const;

/** The DiskEntry of one entry of a folder listing (`at`: its first field in `stats`). */
function listedEntry(kind: DiskEntry['kind'], stats: Float64Array, at: number): DiskEntry {
  return {
    kind,
    size: stats[at + LSTAT.size]!,
    mtimeMs: stats[at + LSTAT.mtimeMs]!,
    mtimeNs: stats[at + LSTAT.mtimeNs]!,
    mode: stats[at + LSTAT.mode]!,
    uid: stats[at + LSTAT.uid]!,
    gid: stats[at + LSTAT.gid]!,
    ino: stats[at + LSTAT.ino]!,
    dev: stats[at + LSTAT.dev]!,
    nlink: stats[at + LSTAT.nlink]!,
    ctimeMs: stats[at + LSTAT.ctimeMs]!,
  };
}

/** `walkFolders`, one entry at a time. */
export async function* walk(
  root: string,
  skip: (rel: string, isDir: boolean) => boolean,
  noStat?: (rel: string) => boolean,
): AsyncGenerator<WalkEntry> {
  for await (const found of walkFolders(root, skip, noStat)) yield* found;
}
