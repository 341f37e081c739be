/*
 * @mimic/fsmeta: what Node's fs lacks for a faithful copy on Linux, as one small N-API addon
 * (native/fsmeta.c) and typed helpers: extended attributes and POSIX ACLs on the path itself
 * (xattrs.ts, acl.ts), data and hole ranges and a hole-keeping writer (sparse.ts), and
 * timestamps to the nanosecond (times below), and the datagram systemd's notify protocol needs
 * (notify below), and a whole-filesystem watch with fanotify (fanotify.ts). Owners, modes and
 * link counts Node has already.
 */
import { native } from './native.js';

export {
  ACL_ACCESS,
  ACL_DEFAULT,
  type AclEntry,
  AclError,
  type AclTag,
  decodeAcl,
  encodeAcl,
  formatAcl,
} from './acl.js';
export {
  FAN,
  type FanotifyBatch,
  FanotifyError,
  FanotifyWatch,
  mountsBelow,
  probeFanotify,
} from './fanotify.js';
export {
  dataBytes,
  dataRanges,
  finishSparse,
  HOLE_BLOCK,
  MAX_RANGES,
  punchHole,
  type Range,
  writeSparse,
} from './sparse.js';
export {
  copies,
  DEFAULT_MAX_XATTR_BYTES,
  decodeXattrs,
  encodeXattrs,
  readXattrs,
  writeXattrs,
  type Xattr,
  XattrError,
  type XattrPolicy,
} from './xattrs.js';

/**
 * Sets the access and modification times of `path` (a link itself, not its target) to the
 * nanosecond, as `fs.lstat(path, { bigint: true })` reports them; fs.utimes rounds to a double.
 */
export const setTimesNs = (path: string, atimeNs: bigint, mtimeNs: bigint): void =>
  native.setTimesNs(path, atimeNs, mtimeNs);

/**
 * Sets both times of `target` (a path, the link itself; or an open file's fd) to `ms` whole
 * milliseconds plus `ns` (0 to 999,999) nanoseconds since the epoch, as a stat reports them to
 * the nanosecond; no BigInt in the common case.
 */
export const setMtime = (target: string | number, ms: number, ns = 0): void =>
  native.setMtime(target, ms, ns);

/**
 * Sends `message` (at most 4094 bytes) as one datagram to the Unix socket `socketPath`, as
 * sd_notify(3) does to $NOTIFY_SOCKET (`READY=1`, `WATCHDOG=1`, ...): an absolute path, or
 * `@name` in the abstract namespace. A failure throws an Error whose `code` is the errno name
 * (ENOENT: no such socket; ECONNREFUSED: nothing bound there).
 */
export const notify = (socketPath: string, message: string): void => native.notify(socketPath, message);

/**
 * Returns the C heap's free pages to the system (glibc's malloc_trim(0)), so that a node's RSS
 * falls back after a burst of work instead of staying at its high-water mark; true when some
 * memory was released. A no-op (false) where the C library is not glibc.
 */
export const trimMemory = (): boolean => native.trimMemory();

/** What `lstatDir` gives each entry: LSTAT.fields doubles, at these offsets. */
export const LSTAT = {
  /** 0 a regular file, 1 a folder, 2 a symbolic link. */
  kind: 0,
  /** Bytes (0 for what is not a regular file). */
  size: 1,
  /** The mtime in whole milliseconds since the epoch, and the nanoseconds past them. */
  mtimeMs: 2,
  mtimeNs: 3,
  /** Permission bits (mode & 0o7777). */
  mode: 4,
  uid: 5,
  gid: 6,
  ino: 7,
  dev: 8,
  nlink: 9,
  /** The ctime in milliseconds, as Node's Stats.ctimeMs. */
  ctimeMs: 10,
  fields: 11,
} as const;

/** A folder's entries with their lstat, from one call: `stats` holds LSTAT.fields per name. */
export interface DirListing {
  names: string[];
  stats: Float64Array;
}

/**
 * Lists the folder `path` and lstats every entry in one call (the entries sorted by name, as
 * Node's readdir has them): for a scan of a big tree, a tenth of the time of a BigInt lstat per
 * entry. Entries gone by their lstat, and sockets, fifos and devices, are left out. A failure
 * throws an Error whose `code` is the errno name (ENOENT, ENOTDIR, EACCES).
 */
export const lstatDir = (path: string): DirListing => native.lstatDir(path);
