import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fdatasync,
  fstatSync,
  mkdirSync,
  openSync,
  rmSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { createHasher, hashToHex, patchInto, type StreamHasher, strongHash } from '@mimic/delta';
import { finishSparse, setMtime } from '@mimic/fsmeta';
import type { WriteOp } from '@mimic/wire';
import { AsyncQueue } from '../../node/async-queue.js';
import { hashZeros, holePuncher, looksSparse, SPARSE_MIN_BYTES, writeAt } from '../../node/holes.js';
import { attrsOf } from '../../node/local-fs.js';
import type { FileRecord } from '../../node/store.js';
import { ApplyError } from './errors.js';

/*
 * Assembly of a write: a file's new content is rebuilt in a temp file under the state folder
 * (never under its final name) from parts 0..n in order, verified against the hash and size the
 * last part announces, and given its mode and mtime. The result, `Assembled`, is still open: it
 * waits for its group commit (group-commit.ts) to be made durable and renamed into place.
 *
 * A file sent whole in one part (most files of a tree) is checked before anything is written
 * (`whole`). A longer one is an `Assembly` in flight, one of:
 *   full   parts are the content itself: hashed and written as they come, each at its offset;
 *   delta  parts form a patch against the basis (the mirror's copy, already checked against the
 *          delta's base hash): queued to `patchInto`, which writes and hashes the result.
 * Holes stay holes, as rsync -S writes: what no full part covers (a sparse file's holes, which
 * the primary does not send) is never written, nor are the zero blocks of files of at least
 * SPARSE_MIN_BYTES; a patched file whose basis was sparse has its zero blocks punched out.
 * `begin` makes one, `add` feeds it a part, `finish` verifies it (or drops it, for an aborted
 * write), `drop` abandons it half-received.
 */

/**
 * Starts the kernel writing a large file back while it is still being rebuilt: an fdatasync
 * in the background after every WRITE_BACK_BYTES, one at a time. The fsync before the rename
 * then finds little left to do, which takes most of its cost off the critical path.
 */
const WRITE_BACK_BYTES = 32 * 1024 * 1024;

export class EarlyWriteBack {
  readonly #fd: number;
  #since = 0;
  #busy = false;

  constructor(fd: number) {
    this.#fd = fd;
  }

  wrote(bytes: number): void {
    this.#since += bytes;
    if (this.#since < WRITE_BACK_BYTES || this.#busy) return;
    this.#since = 0;
    this.#busy = true;
    fdatasync(this.#fd, () => {
      this.#busy = false;
    });
  }
}

const DONE: Promise<void> = Promise.resolve();

/** What a rebuilt file gets of the write's metadata beyond its mode (set by the applier's policy). */
export interface FileMeta {
  /** Sets owner and group on the open temp file; whether it changed them. */
  owner(fd: number, op: WriteOp): boolean;
  /** Sets the write's xattrs on the temp file, by its path. */
  xattrs(tmp: string, op: WriteOp): void;
}

/** Refuses a rebuilt file whose hash or size is not what the write's last part announced. */
export function checkContent(last: WriteOp, hash: string, size: number): void {
  if (hash !== last.hash || size !== last.size) {
    throw new ApplyError(
      `${last.path}: content hash ${hash}/${size} does not match ${last.hash}/${last.size}`,
    );
  }
}

/** A temp file being written, created with `modeSet` (-1 when it needs an fchmod). */
export interface Temp {
  fd: number;
  tmp: string;
  modeSet: number;
}

interface Common extends Temp {
  /** The write's first part (its path, mode and encoding). */
  op: WriteOp;
  nextPart: number;
  flusher: EarlyWriteBack;
}

/** A write whose parts are still arriving. */
export type Assembly =
  | (Common & {
      kind: 'full';
      hasher: StreamHasher;
      /** Where the data so far ends: the next part's offset, unless it names one. */
      end: number;
      /** Zero blocks are left unwritten (a file of SPARSE_MIN_BYTES or more). */
      sparse: boolean;
      /** Something was left unwritten: the size is set at the end. */
      holes: boolean;
      /** Hashing that waits on the zeros of a hole before a part, if any: parts hash in order. */
      hashing: Promise<void> | null;
    })
  | (Common & {
      kind: 'delta';
      basisFd: number;
      queue: AsyncQueue<Uint8Array>;
      patching: Promise<{ length: number; hash: bigint }>;
    });

/** A verified temp file with its mode and mtime, still open, waiting to land as `rec.path`. */
export interface Assembled {
  fd: number;
  tmp: string;
  rel: string;
  /** Its record once landed (`ino` and `ctimeMs` are filled in then). */
  rec: FileRecord;
}

/** Closes and removes a temp file, whatever state it is in. */
export function discard(temp: { fd: number; tmp: string }): void {
  try {
    closeSync(temp.fd);
  } catch {}
  try {
    unlinkSync(temp.tmp);
  } catch {}
}

export class Assembler {
  readonly #tmpDir: string;
  /** The temp folder with one trailing slash, for names made without path.join. */
  readonly #tmpSlash: string;
  /** Temp names: unique in this process by the counter, across processes by the prefix. */
  readonly #tmpPrefix = `${randomBytes(4).toString('hex')}-`;
  #tmpCount = 0;
  /** Permission bits open() strips from a new file (learnt by `init`). */
  #umask = 0o777;
  /** Frees descriptors when open() runs out of them; false if there is nothing to free. */
  readonly #freeDescriptors: () => Promise<boolean>;
  readonly #meta: FileMeta;

  constructor(
    tmpDir: string,
    freeDescriptors: () => Promise<boolean> = async () => false,
    meta: FileMeta = { owner: () => false, xattrs: () => {} },
  ) {
    this.#meta = meta;
    this.#tmpDir = tmpDir;
    this.#tmpSlash = tmpDir.endsWith('/') ? tmpDir : `${tmpDir}/`;
    this.#freeDescriptors = freeDescriptors;
  }

  /** Removes temp files a crash left behind, and learns the umask new files get. */
  init(): void {
    rmSync(this.#tmpDir, { recursive: true, force: true });
    mkdirSync(this.#tmpDir, { recursive: true });
    const probe = join(this.#tmpDir, `${this.#tmpPrefix}umask`);
    const fd = openSync(probe, 'wx', 0o777);
    try {
      this.#umask = 0o777 & ~fstatSync(fd).mode;
    } finally {
      closeSync(fd);
      unlinkSync(probe);
    }
  }

  /**
   * A file whose whole content came in one part: checked against its hash before anything is
   * written, then written to a temp file; one with holes around its data is assembled as parts
   * are, and checked once written. Null for an aborted write (the copy here stays).
   */
  async whole(op: WriteOp): Promise<Assembled | null> {
    if (op.abort) return null;
    const data = op.data;
    // A sparse file with one region of data, or none.
    if (op.offset || op.size !== data.length) return this.#holey(op);
    const hash = hashToHex(strongHash(data));
    checkContent(op, hash, data.length);
    const temp = await this.#createTemp(op.mode);
    try {
      if (writeAt(temp.fd, data, 0, data.length >= SPARSE_MIN_BYTES)) finishSparse(temp.fd, data.length);
      return this.#ready(temp, op, data.length, hash);
    } catch (err) {
      discard(temp);
      throw err;
    }
  }

  async #holey(op: WriteOp): Promise<Assembled | null> {
    const a = await this.begin(op, null);
    try {
      await this.add(a, op.data, op.offset);
    } catch (err) {
      await this.drop(a);
      throw err;
    }
    return this.finish(a, op);
  }

  /**
   * Starts a write of several parts (`op` is part 0, not yet added). A delta needs `basis`, the
   * absolute path of the mirror's copy, already checked to be the delta's basis.
   */
  async begin(op: WriteOp, basis: string | null): Promise<Assembly> {
    const { fd, tmp, modeSet } = await this.#createTemp(op.mode);
    const common = { op, fd, tmp, modeSet, nextPart: 0, flusher: new EarlyWriteBack(fd) };
    if (op.encoding !== 'delta') {
      const sparse = op.size >= SPARSE_MIN_BYTES;
      return { ...common, kind: 'full', hasher: createHasher(), end: 0, sparse, holes: false, hashing: null };
    }
    let basisFd = -1;
    let punch: ((bytes: number) => void) | null;
    try {
      if (basis === null) throw new ApplyError(`${op.path}: a delta without a basis`);
      basisFd = openSync(basis, 'r');
      // A sparse basis makes a sparse result, as a rule; a dense one costs nothing more.
      punch = looksSparse(fstatSync(basisFd)) ? holePuncher(fd) : null;
    } catch (err) {
      if (basisFd >= 0) closeSync(basisFd);
      discard(common);
      throw err;
    }
    const queue = new AsyncQueue<Uint8Array>();
    const patching = patchInto({ fd: basisFd }, queue, { fd }, (n) => {
      punch?.(n);
      common.flusher.wrote(n);
    });
    patching.catch(() => {});
    return { ...common, kind: 'delta', basisFd, queue, patching };
  }

  /**
   * Feeds the next part (the caller checked its order), at `offset` if it names one: what it
   * skips is a hole. Await the promise before the next part: it is settled at once, unless the
   * zeros of a hole must be hashed first. An offset that goes back is refused (ERR_APPLY).
   */
  add(a: Assembly, data: Uint8Array, offset?: number): Promise<void> {
    a.nextPart++;
    if (a.kind === 'delta') {
      a.queue.push(data);
      return DONE;
    }
    const at = offset ?? a.end;
    if (at < a.end) {
      throw new ApplyError(`${a.op.path}: part ${a.nextPart - 1} at offset ${at} goes back before ${a.end}`);
    }
    const gap = at - a.end;
    a.end = at + data.length;
    // Hashed first: the zero-block scan then finds the part in the CPU's cache.
    if (gap === 0 && a.hashing === null) a.hasher.update(data);
    else {
      a.holes = true;
      const hasher = a.hasher;
      a.hashing = (a.hashing ?? DONE).then(async () => {
        await hashZeros(hasher, gap);
        hasher.update(data);
      });
    }
    if (data.length > 0) {
      if (writeAt(a.fd, data, at, a.sparse)) a.holes = true;
      a.flusher.wrote(data.length);
    }
    return a.hashing ?? DONE;
  }

  /**
   * Ends a write at its last part (already added): the content verified, its temp file ready to
   * land; null for an aborted write. The temp file is removed on failure or abort.
   */
  async finish(a: Assembly, last: WriteOp): Promise<Assembled | null> {
    try {
      let hash: string;
      let size: number;
      if (a.kind === 'delta') {
        a.queue.end();
        const r = await a.patching;
        hash = hashToHex(r.hash);
        size = r.length;
      } else {
        await a.hashing;
        // What no part covered up to the size is a hole. The size is set first, so that one
        // the file system cannot hold fails before any hashing (none for an aborted write).
        size = Math.max(a.end, last.size);
        if (a.holes || size > a.end) finishSparse(a.fd, size);
        if (!last.abort) await hashZeros(a.hasher, size - a.end);
        hash = hashToHex(a.hasher.digest());
      }
      if (last.abort) {
        discard(a);
        return null;
      }
      checkContent(last, hash, size);
      return this.#ready(a, last, size, hash);
    } catch (err) {
      discard(a);
      throw err;
    } finally {
      if (a.kind === 'delta') closeSync(a.basisFd);
    }
  }

  /** Drops a half-received write (connection lost mid-transfer). */
  async drop(a: Assembly): Promise<void> {
    if (a.kind === 'delta') {
      a.queue.end();
      await a.patching.catch(() => {});
    }
    discard(a);
    if (a.kind === 'delta') {
      try {
        closeSync(a.basisFd);
      } catch {}
    }
  }

  /**
   * A new temp file for content of `mode`, created with its permission bits when the umask
   * keeps them (`modeSet`; -1 when an fchmod must follow). The special bits (setuid, setgid,
   * sticky) are only ever set by fchmod, once the content is verified.
   */
  async #createTemp(mode: number): Promise<Temp> {
    const tmp = `${this.#tmpSlash}${this.#tmpPrefix}${(this.#tmpCount++).toString(36)}.part`;
    const createMode = mode & 0o777;
    let fd: number;
    try {
      // Readable too, for the hole puncher.
      fd = openSync(tmp, 'wx+', createMode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EMFILE' || !(await this.#freeDescriptors())) throw err;
      fd = openSync(tmp, 'wx+', createMode); // the pending files gave theirs back
    }
    return { fd, tmp, modeSet: (createMode & ~this.#umask) === mode ? mode : -1 };
  }

  /**
   * A verified temp file gets its owner, mode, xattrs and mtime to the ns, in that order (the
   * chown first: it clears setuid; the times last).
   */
  #ready(temp: Temp, last: WriteOp, size: number, hash: string): Assembled {
    const chowned = this.#meta.owner(temp.fd, last);
    if (temp.modeSet !== last.mode || (chowned && last.mode & 0o6000)) fchmodSync(temp.fd, last.mode);
    this.#meta.xattrs(temp.tmp, last);
    setMtime(temp.fd, last.mtimeMs, last.mtimeNs ?? 0);
    return {
      fd: temp.fd,
      tmp: temp.tmp,
      rel: last.path,
      rec: {
        path: last.path,
        kind: 'file',
        size,
        mtimeMs: last.mtimeMs,
        mode: last.mode,
        ...attrsOf(last),
        hash,
        ino: 0,
        ctimeMs: 0,
      },
    };
  }
}
