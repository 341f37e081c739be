/*
 * A watch of a whole filesystem with fanotify(7) (native/fanotify.c), for a process with
 * CAP_SYS_ADMIN on Linux 5.9 or later: one mark instead of one inotify watch per folder, and
 * nothing to crawl before it covers the tree. Events name paths relative to the root given; the
 * rest of the filesystem's events are dropped in the addon.
 *
 * A mask may carry several bits: the kernel merges events on one entry that wait in its queue
 * together (a create, its writes and its close come as one). `overflow` says events were lost
 * (the kernel's queue of 16,384 overflowed, or a folder's path could not be found): the tree
 * then needs a rescan. A watch covers one filesystem: what is mounted below the root (see
 * mountsBelow) is not watched.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { type NativeFanotifyWatch, native } from './native.js';

/** The event bits of fanotify(7) a watch reports. */
export const FAN = Object.freeze({
  MODIFY: 0x2,
  ATTRIB: 0x4,
  CLOSE_WRITE: 0x8,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
  /** The entry is a folder. */
  ONDIR: 0x40000000,
});

/** What one read of the queue held: `paths[i]` (relative to the root; '' the root) had `masks[i]`. */
export interface FanotifyBatch {
  readonly paths: readonly string[];
  readonly masks: readonly number[];
  readonly overflow: boolean;
  /** Events the read took from the queue, those outside the root too. */
  readonly events: number;
}

/**
 * A fanotify watch that could not be set up or read. `errno` is the system error's name:
 * EPERM (not root), EINVAL or ENOSYS (a kernel without FAN_REPORT_DFID_NAME), EOPNOTSUPP or
 * EXDEV (a filesystem without file handles, or a mark fanotify refuses there), ENOENT or
 * ENOTDIR (no such folder).
 */
export class FanotifyError extends Error {
  readonly code = 'ERR_FANOTIFY' as const;
  readonly errno: string;

  constructor(message: string, errno: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FanotifyError';
    this.errno = errno;
  }
}

function wrap(err: unknown): unknown {
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  if (e?.code !== 'ERR_FANOTIFY') return err;
  return new FanotifyError(String(e.message), typeof e.errno === 'string' ? e.errno : 'EUNKNOWN', {
    cause: err,
  });
}

/** Watches the filesystem that holds folder `root`; the mark is in place once constructed. */
export class FanotifyWatch {
  readonly root: string;
  #watch: NativeFanotifyWatch | null;

  constructor(root: string) {
    this.root = root;
    try {
      this.#watch = native.fanotifyOpen(root);
    } catch (err) {
      throw wrap(err);
    }
  }

  /**
   * Waits up to `timeoutMs` (blocking the thread) for events and returns one read's worth: a
   * few thousand paths at most; none when the wait ran out.
   */
  read(timeoutMs: number): FanotifyBatch {
    if (!this.#watch) throw new FanotifyError(`fanotify watch of ${this.root}: closed`, 'EBADF');
    try {
      return native.fanotifyRead(this.#watch, timeoutMs);
    } catch (err) {
      throw wrap(err);
    }
  }

  /** Removes the mark; closing again does nothing. */
  close(): void {
    if (this.#watch) native.fanotifyClose(this.#watch);
    this.#watch = null;
  }
}

/**
 * Whether a fanotify watch of `root` can be set up here: null if so, else why not (the
 * FanotifyError). Sets one up and closes it again, a few system calls.
 */
export function probeFanotify(root: string): FanotifyError | null {
  try {
    new FanotifyWatch(root).close();
    return null;
  } catch (err) {
    if (err instanceof FanotifyError) return err;
    throw err;
  }
}

/** A mount point as /proc/self/mountinfo writes it: space, tab, newline and backslash in octal. */
const unescapeMount = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));

/**
 * The mount points strictly below folder `root` (of other filesystems, or bind mounts), as
 * /proc/self/mountinfo lists them: a fanotify watch of the root does not see into them. Empty
 * where /proc is not mounted.
 */
export function mountsBelow(root: string): string[] {
  let table: string;
  try {
    table = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const real = realpathSync(root);
  const prefix = real === '/' ? '/' : `${real}/`;
  const found: string[] = [];
  for (const line of table.split('\n')) {
    const field = line.split(' ', 5)[4];
    if (field === undefined) continue;
    const point = unescapeMount(field);
    if (point.startsWith(prefix) && point !== real) found.push(point);
  }
  return found;
}
