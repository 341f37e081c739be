import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fdatasync,
  fstatSync,
  fsync,
  futimesSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createHasher, hashToHex, patchInto, strongHash, writeAllSync } from '@mimic/delta';
import { checkWirePath, type Op, type WriteOp } from '@mimic/wire';
import { AsyncQueue } from '../../node/async-queue.js';
import { ConfinementError, isBlockedParent, mkdirsNoFollow, safePath } from '../../node/confine.js';
import { AgentError } from '../../node/errors.js';
import { FileSystemSync } from '../../node/fs-sync.js';
import { type DiskEntry, entryOf, readFileVersion, statEntrySync } from '../../node/local-fs.js';
import type { Logger } from '../../node/log.js';
import type { FileRecord, Store } from '../../node/store.js';
import { preserve } from './preserve.js';

/*
 * Applies operations to the mirror's folder, in order, durably, and only inside the root.
 *
 * Every path from the wire goes through `safePath`: relative, normalised, and no parent may be
 * a symlink or a file, so nothing is ever written, moved or removed through a link, whatever
 * order operations arrive in. An op that only removes or adjusts (delete, meta, a rename's old
 * name) takes a path below a link or a file as already absent, not as an error: a replay after
 * a partly applied batch meets exactly that (`d/x` deleted, then `d` made a link); an op that
 * creates a path clears a file of its own where a folder on the way belongs. A write is rebuilt
 * in a temp file under the state folder (never under its final name) from parts 0..n in order,
 * verified against its hash, given its mode and mtime, and kept open. `commit` makes all
 * pending temp files durable at once (an fsync each, or one syncfs for a large group), checks
 * each final path again, renames them into place and makes their folders durable the same way;
 * only after that is the batch's sequence recorded and acknowledged. Anything in the way that the mirror did not write itself is moved
 * under diverged/ first. I/O is synchronous except the fsyncs, which run in parallel on the
 * thread pool, and syncfs, which runs in a helper process (see fs-sync.ts).
 */

/** A delta's basis is not the mirror's copy of the file: the mirror reconciles by manifest. */
export class ResyncNeeded extends AgentError {
  declare readonly code: 'ERR_BASIS_MISMATCH';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BASIS_MISMATCH', message, options);
    this.name = 'ResyncNeeded';
  }
}

/** An op that cannot be applied as sent (the message names the path). */
export class ApplyError extends AgentError {
  declare readonly code: 'ERR_APPLY';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_APPLY', message, options);
    this.name = 'ApplyError';
  }
}

/** Files rebuilt and verified could not be made durable or put in place (the cause says why). */
export class LandingError extends AgentError {
  declare readonly code: 'ERR_LAND';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LAND', message, options);
    this.name = 'LandingError';
  }
}

const fsyncAsync = promisify(fsync);

/**
 * Starts the kernel writing a large file back while it is still being rebuilt: an fdatasync
 * in the background after every WRITE_BACK_BYTES, one at a time. The fsync before the rename
 * then finds little left to do, which takes most of its cost off the critical path.
 */
const WRITE_BACK_BYTES = 32 * 1024 * 1024;

class EarlyWriteBack {
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

interface Pending {
  fd: number;
  tmp: string;
  rel: string;
  rec: FileRecord;
}

interface InFlight {
  op: WriteOp;
  fd: number;
  tmp: string;
  basisFd: number | null;
  nextPart: number;
  queue: AsyncQueue<Uint8Array> | null;
  patching: Promise<{ length: number; hash: bigint }> | null;
  hasher: ReturnType<typeof createHasher> | null;
  written: number;
  flusher: EarlyWriteBack;
  /** The mode the temp file was created with, or -1 if it needs an fchmod. */
  modeSet: number;
}

/**
 * Files rebuilt before one group commit. Larger groups mean fewer fsync rounds, and each round
 * also fsyncs every folder it touched, so a tree of 20,000 files in 200 folders wants large
 * groups. Each pending file holds a descriptor (a lack of them forces an early commit).
 */
const MAX_PENDING = 2048;
const MAX_PENDING_BYTES = 128 * 1024 * 1024;
/**
 * A group of at least this many files is made durable by syncfs (twice: the files before their
 * renames, the renames after), a smaller one by fsync of each file and folder.
 */
const SYNCFS_MIN_FILES = 64;

/**
 * Seconds for utimes from whole milliseconds. Half a microsecond is added because seconds
 * travel as a double: 1795647399.882 would land as .881999… and read back a millisecond early.
 */
function utimeOf(mtimeMs: number): number {
  return (mtimeMs + 0.0005) / 1000;
}

function recordOf(rel: string, e: DiskEntry, extra: { hash?: string; target?: string } = {}): FileRecord {
  return {
    path: rel,
    kind: e.kind,
    size: e.size,
    mtimeMs: e.mtimeMs,
    mode: e.mode,
    ino: e.ino,
    ctimeMs: e.ctimeMs,
    ...extra,
  };
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** Refuses a rebuilt file whose hash or size is not what the write's last part announced. */
function checkContent(last: WriteOp, hash: string, size: number): void {
  if (hash !== last.hash || size !== last.size) {
    throw new ApplyError(
      `${last.path}: content hash ${hash}/${size} does not match ${last.hash}/${last.size}`,
    );
  }
}

export class Applier {
  readonly manifest: Map<string, FileRecord>;
  readonly root: string;
  /**
   * The root (an absolute, resolved path) and the temp folder with one trailing slash: a checked
   * wire path or a temp name appended makes a path without path.join's normalising pass.
   */
  readonly #rootSlash: string;
  readonly #tmpSlash: string;
  readonly #store: Store;
  readonly #tmpDir: string;
  readonly #diverged: () => string;
  readonly #log: Logger;
  readonly #fsSync: FileSystemSync;
  #pending = new Map<string, Pending>();
  #safeDirs = new Set<string>(['.']);
  /** Folder metadata waiting for the files below it to be committed. */
  #dirMeta = new Map<string, { mode: number; mtimeMs: number }>();
  #pendingBytes = 0;
  /** The commit running in the background (at most one), and the paths it is landing. */
  #landing: { paths: Set<string>; done: Promise<void>; over: boolean } | null = null;
  #landingError: Error | null = null;
  #current: InFlight | null = null;
  /** Temp names: unique in this process by the counter, across processes by the prefix. */
  readonly #tmpPrefix = `${randomBytes(4).toString('hex')}-`;
  #tmpCount = 0;
  /** Permission bits open() strips from a new file (learnt by `init`). */
  #umask = 0o777;
  preserved = 0;
  /** Paths this node wrote as a primary after its epoch was superseded: kept, never overwritten. */
  keep = new Set<string>();
  /** Called before an op other than a write changes the tree (after any landing before it). */
  beforeTreeChange: () => void = () => {};

  constructor(root: string, store: Store, tmpDir: string, diverged: () => string, log: Logger) {
    this.root = root;
    this.#rootSlash = root.endsWith('/') ? root : `${root}/`;
    this.#tmpSlash = tmpDir.endsWith('/') ? tmpDir : `${tmpDir}/`;
    this.#store = store;
    this.#tmpDir = tmpDir;
    this.#diverged = diverged;
    this.#log = log;
    this.#fsSync = new FileSystemSync(root);
    this.manifest = store.loadFiles();
  }

  /** Ends the helper that runs syncfs (after the last commit). */
  close(): void {
    this.#fsSync.close();
  }

  /** Removes temp files a crash left behind, and learns the umask new files get. */
  async init(): Promise<void> {
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

  get busy(): boolean {
    return this.#current !== null;
  }

  get hasPending(): boolean {
    return this.#pending.size > 0;
  }

  /**
   * The absolute path for `rel`, refused (ERR_UNSAFE_PATH) if it would pass through a link.
   * Folders already checked are remembered until an op that could replace one (symlink,
   * delete, rename, removal of a tree) forgets them all.
   */
  async #safe(rel: string): Promise<string> {
    const parent = dirname(rel);
    if (this.#safeDirs.has(parent)) {
      checkWirePath(rel);
      return this.#rootSlash + rel;
    }
    const abs = await safePath(this.root, rel);
    if (parent !== '.' && statEntrySync(dirname(abs))?.kind === 'dir' && this.#safeDirs.size < 65536) {
      this.#safeDirs.add(parent);
    }
    return abs;
  }

  /** True when the path on disk is exactly what this mirror last wrote there. */
  isOurs(rel: string, e: DiskEntry | null): boolean {
    const rec = this.manifest.get(rel);
    if (!e) return true;
    if (this.keep.has(rel) && e.kind !== 'dir') return false;
    if (!rec || rec.kind !== e.kind) return false;
    if (e.kind === 'dir') return true;
    return rec.size === e.size && rec.mtimeMs === e.mtimeMs && rec.ino === e.ino;
  }

  /** Clears the way for a new entry at `rel`: keeps a local edit under diverged/, removes our own. */
  async #clear(rel: string): Promise<void> {
    const abs = await this.#safe(rel);
    const e = statEntrySync(abs);
    if (!e) return;
    if (e.kind === 'dir') {
      await this.#removeTree(rel);
      return;
    }
    if (this.isOurs(rel, e)) unlinkSync(abs);
    else await this.#keep(rel);
    this.manifest.delete(rel);
  }

  async #keep(rel: string): Promise<void> {
    const dest = await preserve(this.root, this.#diverged(), rel);
    this.keep.delete(rel);
    this.preserved++;
    this.#log('preserved', { path: rel, to: dest });
  }

  async #removeTree(rel: string): Promise<void> {
    const abs = await this.#safe(rel);
    this.#forgetSafeDirs();
    let names: string[] = [];
    try {
      names = readdirSync(abs);
    } catch {
      return;
    }
    for (const name of names) {
      const child = `${rel}/${name}`;
      const e = statEntrySync(join(abs, name));
      if (!e) continue;
      if (e.kind === 'dir') await this.#removeTree(child);
      else if (this.isOurs(child, e)) unlinkSync(join(abs, name));
      else await this.#keep(child);
      this.manifest.delete(child);
    }
    try {
      rmdirSync(abs);
    } catch {
      await this.#keep(rel);
    }
    this.manifest.delete(rel);
  }

  /** Makes the parent folders of `rel` (never through a link); a file of ours in the way goes. */
  async #ensureParent(rel: string): Promise<void> {
    const parent = dirname(rel);
    if (parent === '.') return;
    const e = statEntrySync(await this.#safe(parent));
    if (e?.kind === 'dir') return;
    if (e) await this.#clear(parent);
    await mkdirsNoFollow(this.root, parent);
  }

  /** Applies one op (or one part of a write). Resolves when it is applied (writes: pending commit). */
  async apply(op: Op): Promise<void> {
    if (op.kind === 'write') return this.#write(op);
    if (this.#current) throw new ApplyError(`a ${op.kind} arrived in the middle of ${this.#current.op.path}`);
    // Anything that changes the tree waits for the files being renamed into it: their paths
    // were checked against the tree as it was.
    await this.#landed();
    this.beforeTreeChange();
    switch (op.kind) {
      case 'mkdir': {
        await this.#flushIfPendingUnder(op.path);
        const abs = await this.#safeToCreate(op.path);
        const e = statEntrySync(abs);
        if (e && e.kind !== 'dir') await this.#clear(op.path);
        if (e?.kind !== 'dir') {
          await this.#ensureParent(op.path);
          mkdirSync(abs, { mode: op.mode });
        }
        chmodSync(abs, op.mode);
        lutimesSync(abs, utimeOf(op.mtimeMs), utimeOf(op.mtimeMs));
        this.#record(op.path, abs, {});
        return;
      }
      case 'symlink': {
        await this.#flushIfPendingUnder(op.path);
        this.#forgetSafeDirs();
        const abs = await this.#safeToCreate(op.path);
        await this.#clear(op.path);
        await this.#ensureParent(op.path);
        symlinkSync(op.target, abs);
        try {
          lutimesSync(abs, utimeOf(op.mtimeMs), utimeOf(op.mtimeMs));
        } catch {}
        this.#record(op.path, abs, { target: op.target });
        return;
      }
      case 'delete': {
        await this.#flushIfPendingUnder(op.path);
        this.#forgetSafeDirs();
        // Below what is now a link or a file, or not there at all (a replay after a partly
        // applied batch): already absent. Nothing is looked at or removed through the link.
        const abs = await this.#safeOrAbsent(op.path);
        if (abs === null || !statEntrySync(abs)) {
          this.#forgetTree(op.path);
          return;
        }
        await this.#clear(op.path);
        // #clear dropped the subtree from memory; the store's rows below it go too.
        this.#store.deleteTree(op.path);
        return;
      }
      case 'rename': {
        // Files still waiting for their commit below either name land first: a rename never
        // moves (or replaces) a folder under a pending file, so no link can redirect it.
        await this.#flushIfPendingUnder(op.from);
        await this.#flushIfPendingUnder(op.to);
        this.#forgetSafeDirs();
        // Already gone (or below what is now a link): nothing moves, a later op brings the
        // content. Otherwise the new name is checked as strictly as any write.
        const fromAbs = await this.#safeOrAbsent(op.from);
        if (fromAbs === null || !statEntrySync(fromAbs)) {
          checkWirePath(op.to); // nothing moves, but a malformed name is refused all the same
          return;
        }
        const toAbs = await this.#safeToCreate(op.to);
        await this.#clear(op.to);
        await this.#ensureParent(op.to);
        renameSync(fromAbs, toAbs);
        const moved: FileRecord[] = [];
        const top = this.manifest.get(op.from);
        if (top && top.kind !== 'dir') moved.push(top);
        else for (const [rel, rec] of this.manifest) if (under(rel, op.from)) moved.push(rec);
        for (const rec of moved) this.manifest.delete(rec.path);
        for (let i = 0; i < moved.length; i++) {
          const rec = moved[i]!;
          const path = op.to + rec.path.slice(op.from.length);
          moved[i] = { ...rec, path };
          this.manifest.set(path, moved[i]!);
        }
        this.#persistTree(op.from, op.to, moved);
        return;
      }
      case 'meta': {
        const abs = await this.#safeOrAbsent(op.path);
        if (abs === null) return; // below a link or a file now: nothing here to change
        const e = statEntrySync(abs);
        if (e?.kind === 'dir' && this.#hasPendingUnder(op.path)) {
          // Files still to land below would change the folder's time again: set it after
          // the commit that renames them, rather than forcing that commit now.
          this.#dirMeta.set(op.path, { mode: op.mode, mtimeMs: op.mtimeMs });
          return;
        }
        await this.#flushIfPendingUnder(op.path);
        this.#setMeta(op.path, abs, op.mode, op.mtimeMs);
        return;
      }
    }
  }

  /**
   * `#safe` for an op that creates `rel`: a regular file where one of its folders belongs is
   * cleared first (removed if ours, else kept under diverged/), as a later op would have it;
   * a replay after a partly applied batch meets this. A link on the way is still refused.
   */
  async #safeToCreate(rel: string): Promise<string> {
    for (;;) {
      try {
        return await this.#safe(rel);
      } catch (err) {
        if (!(err instanceof ConfinementError) || err.blocked?.kind !== 'file') throw err;
        this.#forgetSafeDirs();
        await this.#clear(err.blocked.at);
      }
    }
  }

  /**
   * `#safe`, or null where a parent is a link or a file: for ops that only remove or adjust,
   * for which a path that cannot be reached inside the root is already absent.
   */
  async #safeOrAbsent(rel: string): Promise<string | null> {
    try {
      return await this.#safe(rel);
    } catch (err) {
      if (isBlockedParent(err)) return null;
      throw err;
    }
  }

  /**
   * Drops `rel` and everything below it from the manifest (memory and store). In memory only a
   * folder's record can have records below it (every removal drops its subtree), so a file, or
   * a path with no record, costs no scan: a replay may delete thousands of those in a row.
   */
  #forgetTree(rel: string): void {
    const rec = this.manifest.get(rel);
    this.manifest.delete(rel);
    if (rec?.kind === 'dir')
      for (const p of [...this.manifest.keys()]) if (under(p, rel)) this.manifest.delete(p);
    this.#store.deleteTree(rel);
  }

  #forgetSafeDirs(): void {
    this.#safeDirs.clear();
    this.#safeDirs.add('.');
  }

  #hasPendingUnder(rel: string): boolean {
    for (const p of this.#pending.keys()) if (under(p, rel)) return true;
    return false;
  }

  /** Waits for the commit running in the background, and reports its failure. */
  async #landed(): Promise<void> {
    if (this.#landing) await this.#landing.done;
    this.#landing = null;
    const err = this.#landingError;
    this.#landingError = null;
    if (err) throw err;
  }

  async #flushIfPendingUnder(rel: string): Promise<void> {
    if (this.#hasPendingUnder(rel)) await this.commit();
  }

  #setMeta(rel: string, abs: string, mode: number, mtimeMs: number): void {
    const e = statEntrySync(abs);
    if (!e || e.kind === 'symlink' || !this.isOurs(rel, e)) return;
    chmodSync(abs, mode);
    lutimesSync(abs, utimeOf(mtimeMs), utimeOf(mtimeMs));
    const rec = this.manifest.get(rel);
    this.#record(rel, abs, rec?.hash ? { hash: rec.hash } : {});
  }

  #record(rel: string, abs: string, extra: { hash?: string; target?: string }): void {
    const e = statEntrySync(abs);
    if (!e) return;
    const rec = recordOf(rel, e, extra);
    this.manifest.set(rel, rec);
    this.#store.putFile(rec);
  }

  #persistTree(from: string, to: string, moved: FileRecord[]): void {
    this.#store.tx(() => {
      this.#store.deleteTree(from);
      this.#store.deleteTree(to);
      for (const rec of moved) this.#store.putFile(rec);
    });
  }

  async #write(op: WriteOp): Promise<void> {
    let cur = this.#current;
    if (op.part === 0) {
      if (cur) throw new ApplyError(`file ${op.path} started before ${cur.op.path} ended`);
      if (this.#landingError) await this.#landed();
      // A delta's basis is the version last sent: it may still be on its way into place.
      if (op.encoding === 'delta' && (this.#pending.has(op.path) || this.#landing?.paths.has(op.path)))
        await this.commit();
      await this.#safeToCreate(op.path);
      if (op.last && op.encoding === 'full') return this.#writeWhole(op);
      cur = await this.#begin(op);
      this.#current = cur;
    } else if (!cur || cur.op.path !== op.path || op.part !== cur.nextPart) {
      throw new ApplyError(`part ${op.part} of ${op.path} out of order`);
    }
    cur.nextPart++;
    if (cur.queue) cur.queue.push(op.data);
    else if (op.data.length > 0) {
      cur.hasher!.update(op.data);
      writeAllSync(cur.fd, op.data);
      cur.written += op.data.length;
      cur.flusher.wrote(op.data.length);
    }
    if (!op.last) return;
    this.#current = null;
    try {
      await this.#finish(cur, op);
    } catch (err) {
      this.#discard(cur);
      throw err;
    } finally {
      if (cur.basisFd !== null) closeSync(cur.basisFd);
    }
  }

  #discard(cur: { fd: number; tmp: string }): void {
    try {
      closeSync(cur.fd);
    } catch {}
    try {
      unlinkSync(cur.tmp);
    } catch {}
  }

  /**
   * A file whose whole content came in one part (most files of a tree): checked against its
   * hash before anything is written, then written to a temp file that waits to land.
   */
  async #writeWhole(op: WriteOp): Promise<void> {
    if (op.abort) return; // changed while the primary read it: the copy here stays
    const data = op.data;
    const hash = hashToHex(strongHash(data));
    checkContent(op, hash, data.length);
    const temp = await this.#createTemp(op.mode);
    try {
      writeAllSync(temp.fd, data);
      await this.#ready(temp, op, data.length, hash);
    } catch (err) {
      this.#discard(temp);
      throw err;
    }
  }

  /**
   * A new temp file for content of `mode`, created with its permission bits when the umask
   * keeps them (`modeSet`; -1 when an fchmod must follow). The special bits (setuid, setgid,
   * sticky) are only ever set by fchmod, once the content is verified.
   */
  async #createTemp(mode: number): Promise<{ fd: number; tmp: string; modeSet: number }> {
    const tmp = `${this.#tmpSlash}${this.#tmpPrefix}${(this.#tmpCount++).toString(36)}.part`;
    const createMode = mode & 0o777;
    let fd: number;
    try {
      fd = openSync(tmp, 'wx', createMode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EMFILE' || this.#pending.size === 0) throw err;
      await this.commit(); // out of descriptors: the pending files give theirs back
      fd = openSync(tmp, 'wx', createMode);
    }
    return { fd, tmp, modeSet: (createMode & ~this.#umask) === mode ? mode : -1 };
  }

  async #begin(op: WriteOp): Promise<InFlight> {
    const { fd, tmp, modeSet } = await this.#createTemp(op.mode);
    const base = { op, fd, tmp, nextPart: 0, written: 0, flusher: new EarlyWriteBack(fd), modeSet };
    if (op.encoding !== 'delta') {
      return { ...base, basisFd: null, queue: null, patching: null, hasher: createHasher() };
    }
    const abs = await this.#safe(op.path);
    const rec = this.manifest.get(op.path);
    const e = statEntrySync(abs);
    const usable =
      rec !== undefined &&
      rec.hash === op.baseHash &&
      e?.kind === 'file' &&
      rec.size === e.size &&
      rec.mtimeMs === e.mtimeMs &&
      !this.keep.has(op.path);
    if (!usable) {
      this.#discard(base);
      throw new ResyncNeeded(`${op.path}: the mirror's copy is not the delta's basis`);
    }
    const basisFd = openSync(abs, 'r');
    const queue = new AsyncQueue<Uint8Array>();
    const patching = patchInto({ fd: basisFd }, queue, { fd }, (n) => base.flusher.wrote(n));
    patching.catch(() => {});
    return { ...base, basisFd, queue, patching, hasher: null };
  }

  async #finish(cur: InFlight, last: WriteOp): Promise<void> {
    let hash: string;
    let size: number;
    if (cur.queue) {
      cur.queue.end();
      const r = await cur.patching!;
      hash = hashToHex(r.hash);
      size = r.length;
    } else {
      hash = hashToHex(cur.hasher!.digest());
      size = cur.written;
    }
    if (last.abort) {
      this.#discard(cur);
      return;
    }
    checkContent(last, hash, size);
    await this.#ready(cur, last, size, hash);
  }

  /** A verified temp file gets its mode and mtime, and waits to land with the next group. */
  async #ready(
    temp: { fd: number; tmp: string; modeSet: number },
    last: WriteOp,
    size: number,
    hash: string,
  ): Promise<void> {
    if (temp.modeSet !== last.mode) fchmodSync(temp.fd, last.mode);
    futimesSync(temp.fd, utimeOf(last.mtimeMs), utimeOf(last.mtimeMs));
    const prev = this.#pending.get(last.path);
    if (prev) this.#discard(prev);
    this.#pending.set(last.path, {
      fd: temp.fd,
      tmp: temp.tmp,
      rel: last.path,
      rec: {
        path: last.path,
        kind: 'file',
        size,
        mtimeMs: last.mtimeMs,
        mode: last.mode,
        hash,
        ino: 0,
        ctimeMs: 0,
      },
    });
    this.#pendingBytes += size;
    if (this.#pending.size >= MAX_PENDING || this.#pendingBytes >= MAX_PENDING_BYTES) await this.commitSoon();
  }

  /**
   * Makes every pending file durable and visible: sync all, rename all, sync their folders.
   * `record` runs in the same transaction as the manifest rows of the files (or alone when
   * none is pending): the caller's note of what is now applied.
   */
  async commit(record?: () => void): Promise<void> {
    await this.#landed();
    await this.#land(this.#takePending(), record);
  }

  /**
   * `commit` in the background: resolves once the files are on their way (after the previous
   * background commit, if one is still running), while their fsyncs run on the thread pool and
   * the next files are rebuilt. `done` is called once they are durable and visible, with the
   * error if that failed (the next op then fails with it too).
   */
  async commitSoon(record?: () => void, done?: (err?: Error) => void): Promise<void> {
    await this.#landed();
    const batch = this.#takePending();
    const landing = { paths: new Set(batch.map((p) => p.rel)), done: Promise.resolve(), over: false };
    landing.done = this.#land(batch, record).then(
      () => {
        landing.over = true;
        done?.();
      },
      (cause: Error) => {
        landing.over = true;
        const err = new LandingError(`files did not land: ${cause.message}`, { cause });
        this.#landingError = err;
        done?.(err);
      },
    );
    this.#landing = landing;
  }

  /** A background commit is still on its way (its syncs, renames or record). */
  get landing(): boolean {
    return this.#landing !== null && !this.#landing.over;
  }

  #takePending(): Pending[] {
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    this.#pendingBytes = 0;
    return batch;
  }

  async #land(batch: Pending[], record?: () => void): Promise<void> {
    if (batch.length === 0) {
      if (record) this.#store.tx(record);
      return;
    }
    const bulk = batch.length >= SYNCFS_MIN_FILES && (await this.#fsSync.usable());
    try {
      if (bulk) await this.#fsSync.sync();
      else await Promise.all(batch.map((p) => fsyncAsync(p.fd)));
    } catch (err) {
      for (const p of batch) this.#discard(p);
      throw err;
    }
    const dirs = new Set<string>();
    /** Parent folders already found or made in this group. */
    const parents = new Set<string>();
    const recs: FileRecord[] = [];
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      try {
        const abs = await this.#safe(p.rel);
        const e = statEntrySync(abs);
        if (e) {
          if (e.kind === 'dir' || !this.isOurs(p.rel, e)) await this.#clear(p.rel);
        } else if (!parents.has(dirname(p.rel))) {
          await this.#ensureParent(p.rel);
          parents.add(dirname(p.rel));
        }
        renameSync(p.tmp, abs);
        dirs.add(dirname(abs));
        // Its identity after the rename (which changes its ctime), from the descriptor still open.
        let now = entryOf(fstatSync(p.fd));
        closeSync(p.fd);
        p.fd = -1;
        // Created with its mode under the umask `init` saw; a program embedding the mirror may
        // have changed the umask since.
        if (now?.kind === 'file' && now.mode !== p.rec.mode) {
          chmodSync(abs, p.rec.mode);
          now = statEntrySync(abs);
        }
        if (now) recs.push({ ...p.rec, ino: now.ino, ctimeMs: now.ctimeMs, mtimeMs: now.mtimeMs });
      } catch (err) {
        for (const q of batch.slice(i)) {
          if (q.fd >= 0) this.#discard(q);
          else {
            try {
              unlinkSync(q.tmp);
            } catch {}
          }
        }
        throw err;
      }
    }
    if (bulk) await this.#fsSync.sync();
    else
      await Promise.all(
        [...dirs].map(async (d) => {
          const fd = openSync(d, 'r');
          try {
            await fsyncAsync(fd);
          } finally {
            closeSync(fd);
          }
        }),
      );
    this.#store.tx(() => {
      for (const r of recs) {
        this.manifest.set(r.path, r);
        this.#store.putFile(r);
      }
      record?.();
    });
    await this.#applyDirMeta();
  }

  /** Folder times held back for their files, deepest first now that those files landed. */
  async #applyDirMeta(): Promise<void> {
    if (this.#dirMeta.size === 0) return;
    const waiting = [...this.#dirMeta].sort((x, y) => y[0].length - x[0].length);
    this.#dirMeta.clear();
    for (const [rel, m] of waiting) {
      try {
        this.#setMeta(rel, await this.#safe(rel), m.mode, m.mtimeMs);
      } catch {
        // Gone or no longer a plain folder: a later op says what it became.
      }
    }
  }

  /** Drops a half-received file (connection lost mid-transfer). */
  async abandon(): Promise<void> {
    await this.#landed().catch(() => {}); // reported already; the next connection starts clean
    const cur = this.#current;
    this.#current = null;
    if (!cur) return;
    cur.queue?.end();
    await cur.patching?.catch(() => {});
    this.#discard(cur);
    if (cur.basisFd !== null) {
      try {
        closeSync(cur.basisFd);
      } catch {}
    }
  }

  /** The mirror's own hash of a local file (for reconcile), or null if it is not a regular file. */
  async hashLocal(rel: string): Promise<string | null> {
    try {
      return (await readFileVersion(await this.#safe(rel)))?.hash ?? null;
    } catch {
      return null;
    }
  }

  /** Records a local file as ours (it matched the primary's content during reconcile). */
  async adopt(rel: string, hash: string): Promise<void> {
    this.#record(rel, await this.#safe(rel), { hash });
  }

  async readLink(rel: string): Promise<string | null> {
    try {
      return readlinkSync(await this.#safe(rel));
    } catch {
      return null;
    }
  }

  async statLocal(rel: string): Promise<DiskEntry | null> {
    return statEntrySync(await this.#safe(rel));
  }

  /** Removes (or preserves) a local path that the primary does not have. */
  async removeExtra(rel: string): Promise<void> {
    await this.#clear(rel);
    this.#store.deleteFile(rel);
  }

  /** Sets a folder's mtime (after everything below it has landed). */
  async setDirTime(rel: string, mtimeMs: number): Promise<void> {
    await this.commit();
    const abs = await this.#safe(rel);
    if (statEntrySync(abs)?.kind !== 'dir') return;
    lutimesSync(abs, utimeOf(mtimeMs), utimeOf(mtimeMs));
    this.#record(rel, abs, {});
  }

  /** Sets mode/mtime on a file the primary and mirror agree on. */
  async fixMeta(rel: string, mode: number, mtimeMs: number): Promise<void> {
    const abs = await this.#safe(rel);
    chmodSync(abs, mode);
    lutimesSync(abs, utimeOf(mtimeMs), utimeOf(mtimeMs));
    const rec = this.manifest.get(rel);
    this.#record(rel, abs, rec?.hash ? { hash: rec.hash } : {});
  }
}
