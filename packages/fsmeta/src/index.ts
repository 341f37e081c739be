/*
 * @mimic/fsmeta: what Node's fs lacks for a faithful copy on Linux, as one small N-API addon
 * (native/fsmeta.c) and typed helpers: extended attributes and POSIX ACLs on the path itself
 * (xattrs.ts, acl.ts), data and hole ranges and a hole-keeping writer (sparse.ts), and
 * timestamps to the nanosecond (times below), and the datagram systemd's notify protocol needs
 * (notify below). Owners, modes and link counts Node has already.
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
