import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fdatasync,
  fstatSync,
  futimesSync,
  mkdirSync,
  openSync,
  rmSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  createHasher,
  hashToHex,
  patchInto,
  type StreamHasher,
  strongHash,
  writeAllSync,
} from '@mimic/delta';
import type { WriteOp } from '@mimic/wire';
import { AsyncQueue } from '../../node/async-queue.js';
import { ownerOf } from '../../node/local-fs.js';
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
 *   full   parts are the content itself: hashed and written as they come;
 *   delta  parts form a patch against the basis (the mirror's copy, already checked against the
 *          delta's base hash): queued to `patchInto`, which writes and hashes the result.
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

/**
 * Seconds for utimes from whole milliseconds. Half a microsecond is added because seconds
 * travel as a double: 1795647399.882 would land as .881999… and read back a millisecond early.
 */
export function utimeOf(mtimeMs: number): number {
  return (mtimeMs + 0.0005) / 1000;
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
  | (Common & { kind: 'full'; hasher: StreamHasher; written: number })
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
  readonly #setOwner: (fd: number, op: WriteOp) => boolean;

  constructor(
    tmpDir: string,
    freeDescriptors: () => Promise<boolean> = async () => false,
    setOwner: (fd: number, op: WriteOp) => boolean = () => false,
  ) {
    this.#setOwner = setOwner;
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
   * written, then written to a temp file. Null for an aborted write (the copy here stays).
   */
  async whole(op: WriteOp): Promise<Assembled | null> {
    if (op.abort) return null;
    const data = op.data;
    const hash = hashToHex(strongHash(data));
    checkContent(op, hash, data.length);
    const temp = await this.#createTemp(op.mode);
    try {
      writeAllSync(temp.fd, data);
      return this.#ready(temp, op, data.length, hash);
    } catch (err) {
      discard(temp);
      throw err;
    }
  }

  /**
   * Starts a write of several parts (`op` is part 0, not yet added). A delta needs `basis`, the
   * absolute path of the mirror's copy, already checked to be the delta's basis.
   */
  async begin(op: WriteOp, basis: string | null): Promise<Assembly> {
    const { fd, tmp, modeSet } = await this.#createTemp(op.mode);
    const common = { op, fd, tmp, modeSet, nextPart: 0, flusher: new EarlyWriteBack(fd) };
    if (op.encoding !== 'delta') return { ...common, kind: 'full', hasher: createHasher(), written: 0 };
    let basisFd: number;
    try {
      if (basis === null) throw new ApplyError(`${op.path}: a delta without a basis`);
      basisFd = openSync(basis, 'r');
    } catch (err) {
      discard(common);
      throw err;
    }
    const queue = new AsyncQueue<Uint8Array>();
    const patching = patchInto({ fd: basisFd }, queue, { fd }, (n) => common.flusher.wrote(n));
    patching.catch(() => {});
    return { ...common, kind: 'delta', basisFd, queue, patching };
  }

  /** Feeds the next part (the caller checked its order). */
  add(a: Assembly, data: Uint8Array): void {
    a.nextPart++;
    if (a.kind === 'delta') {
      a.queue.push(data);
      return;
    }
    if (data.length === 0) return;
    a.hasher.update(data);
    writeAllSync(a.fd, data);
    a.written += data.length;
    a.flusher.wrote(data.length);
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
        hash = hashToHex(a.hasher.digest());
        size = a.written;
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
      fd = openSync(tmp, 'wx', createMode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EMFILE' || !(await this.#freeDescriptors())) throw err;
      fd = openSync(tmp, 'wx', createMode); // the pending files gave theirs back
    }
    return { fd, tmp, modeSet: (createMode & ~this.#umask) === mode ? mode : -1 };
  }

  /** A verified temp file gets its owner, mode and mtime (the chown first: it clears setuid). */
  #ready(temp: Temp, last: WriteOp, size: number, hash: string): Assembled {
    const chowned = this.#setOwner(temp.fd, last);
    if (temp.modeSet !== last.mode || (chowned && last.mode & 0o6000)) fchmodSync(temp.fd, last.mode);
    futimesSync(temp.fd, utimeOf(last.mtimeMs), utimeOf(last.mtimeMs));
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
        ...ownerOf(last),
        hash,
        ino: 0,
        ctimeMs: 0,
      },
    };
  }
}
