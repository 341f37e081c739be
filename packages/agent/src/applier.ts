import { randomBytes } from 'node:crypto';
import {
  chmod,
  type FileHandle,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  rename,
  rm,
  rmdir,
  symlink,
  unlink,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createHasher, hashToHex, patchInto } from '@mimic/delta';
import type { Op, WriteOp } from '@mimic/wire';
import { AsyncQueue } from './async-queue.js';
import { type DiskEntry, statEntry } from './local-fs.js';
import type { Logger } from './log.js';
import { preserve } from './preserve.js';
import type { FileRecord, Store } from './store.js';

/*
 * Applies operations to the mirror's folder, in order, durably.
 *
 * A write is rebuilt in a temp file (under the state folder, never under its final name),
 * verified against its hash, given its mode and mtime, and kept open. `commit` then fsyncs all
 * pending temp files at once, renames them into place and fsyncs their folders: only after
 * that is the batch's sequence recorded and acknowledged. Anything found in the way that the
 * mirror did not write itself is moved under diverged/ first.
 */

export class ResyncNeeded extends Error {
  readonly code = 'ERR_BASE_MISMATCH';
}

interface Pending {
  fh: FileHandle;
  tmp: string;
  rel: string;
  rec: FileRecord;
}

interface InFlight {
  op: WriteOp;
  fh: FileHandle;
  tmp: string;
  basis: FileHandle | null;
  queue: AsyncQueue<Uint8Array> | null;
  patching: Promise<{ length: number; hash: bigint }> | null;
  hasher: ReturnType<typeof createHasher> | null;
  written: number;
}

/**
 * Seconds for utimes from whole milliseconds. Half a microsecond is added because seconds
 * travel as a double: 1795647399.882 would land as .881999… and read back a millisecond early.
 */
function utimeOf(mtimeMs: number): number {
  return (mtimeMs + 0.0005) / 1000;
}

const MAX_PENDING = 512;
const MAX_PENDING_BYTES = 128 * 1024 * 1024;

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

export class Applier {
  readonly manifest: Map<string, FileRecord>;
  readonly root: string;
  readonly #root: string;
  readonly #store: Store;
  readonly #tmpDir: string;
  readonly #diverged: () => string;
  readonly #log: Logger;
  #pending = new Map<string, Pending>();
  #pendingBytes = 0;
  #current: InFlight | null = null;
  preserved = 0;
  /** Paths this node wrote as a primary after its epoch was superseded: kept, never overwritten. */
  keep = new Set<string>();

  constructor(root: string, store: Store, tmpDir: string, diverged: () => string, log: Logger) {
    this.root = root;
    this.#root = root;
    this.#store = store;
    this.#tmpDir = tmpDir;
    this.#diverged = diverged;
    this.#log = log;
    this.manifest = store.loadFiles();
  }

  /** Removes temp files a crash left behind. */
  async init(): Promise<void> {
    await rm(this.#tmpDir, { recursive: true, force: true });
    await mkdir(this.#tmpDir, { recursive: true });
  }

  get busy(): boolean {
    return this.#current !== null;
  }

  get hasPending(): boolean {
    return this.#pending.size > 0;
  }

  #abs(rel: string): string {
    return join(this.#root, rel);
  }

  /** True when the path on disk is exactly what this mirror last wrote there. */
  async isOurs(rel: string, entry?: DiskEntry | null): Promise<boolean> {
    const e = entry === undefined ? await statEntry(this.#abs(rel)) : entry;
    const rec = this.manifest.get(rel);
    if (!e) return true;
    if (this.keep.has(rel) && e.kind !== 'dir') return false;
    if (!rec || rec.kind !== e.kind) return false;
    if (e.kind === 'dir') return true;
    return rec.size === e.size && rec.mtimeMs === e.mtimeMs && rec.ino === e.ino;
  }

  /** Clears the way for a new entry at `rel`: keeps a local edit under diverged/, removes our own. */
  async #clear(rel: string): Promise<void> {
    const e = await statEntry(this.#abs(rel));
    if (!e) return;
    if (e.kind === 'dir') {
      await this.#removeTree(rel);
      return;
    }
    if (await this.isOurs(rel, e)) await unlink(this.#abs(rel));
    else await this.#keep(rel);
    this.manifest.delete(rel);
  }

  async #keep(rel: string): Promise<void> {
    const dest = await preserve(this.#root, this.#diverged(), rel);
    this.keep.delete(rel);
    this.preserved++;
    this.#log('preserved', { path: rel, to: dest });
  }

  async #removeTree(rel: string): Promise<void> {
    const abs = this.#abs(rel);
    let names: string[] = [];
    try {
      names = await readdir(abs);
    } catch {
      return;
    }
    for (const name of names) {
      const child = `${rel}/${name}`;
      const e = await statEntry(this.#abs(child));
      if (!e) continue;
      if (e.kind === 'dir') await this.#removeTree(child);
      else if (await this.isOurs(child, e)) await unlink(this.#abs(child));
      else await this.#keep(child);
      this.manifest.delete(child);
    }
    await rmdir(abs).catch(async () => this.#keep(rel));
    this.manifest.delete(rel);
  }

  async #ensureParent(rel: string): Promise<void> {
    const parent = dirname(rel);
    if (parent === '.') return;
    const e = await statEntry(this.#abs(parent));
    if (e?.kind === 'dir') return;
    if (e) await this.#clear(parent);
    await this.#ensureParent(parent);
    await mkdir(this.#abs(parent)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }

  /** Applies one op (or one part of a write). Resolves when it is applied (writes: pending commit). */
  async apply(op: Op): Promise<void> {
    if (op.kind === 'write') return this.#write(op);
    if (this.#current) throw new Error(`a ${op.kind} arrived in the middle of a file`);
    switch (op.kind) {
      case 'mkdir': {
        await this.#flushIfPending(op.path);
        const e = await statEntry(this.#abs(op.path));
        if (e && e.kind !== 'dir') await this.#clear(op.path);
        if (e?.kind !== 'dir') {
          await this.#ensureParent(op.path);
          await mkdir(this.#abs(op.path), { mode: op.mode });
        }
        await chmod(this.#abs(op.path), op.mode);
        this.#record(op.path, {});
        return;
      }
      case 'symlink': {
        await this.#flushIfPending(op.path);
        await this.#clear(op.path);
        await this.#ensureParent(op.path);
        await symlink(op.target, this.#abs(op.path));
        await lutimes(this.#abs(op.path), utimeOf(op.mtimeMs), utimeOf(op.mtimeMs)).catch(() => {});
        await this.#record(op.path, { target: op.target });
        return;
      }
      case 'delete':
        await this.commit();
        await this.#clear(op.path);
        this.#store.deleteFile(op.path);
        return;
      case 'rename': {
        await this.commit();
        const src = await statEntry(this.#abs(op.from));
        if (!src) return; // already gone: a later op brings the content
        await this.#clear(op.to);
        await this.#ensureParent(op.to);
        await rename(this.#abs(op.from), this.#abs(op.to));
        const prefix = `${op.from}/`;
        for (const [rel, rec] of [...this.manifest]) {
          if (rel !== op.from && !rel.startsWith(prefix)) continue;
          const moved = op.to + rel.slice(op.from.length);
          this.manifest.delete(rel);
          this.manifest.set(moved, { ...rec, path: moved });
        }
        this.#persistTree(op.from, op.to);
        return;
      }
      case 'meta': {
        await this.#flushIfPending(op.path);
        const e = await statEntry(this.#abs(op.path));
        if (!e || e.kind === 'symlink' || !(await this.isOurs(op.path, e))) return;
        await chmod(this.#abs(op.path), op.mode);
        if (e.kind === 'file') await lutimes(this.#abs(op.path), utimeOf(op.mtimeMs), utimeOf(op.mtimeMs));
        const rec = this.manifest.get(op.path);
        await this.#record(op.path, rec?.hash ? { hash: rec.hash } : {});
        return;
      }
    }
  }

  async #flushIfPending(rel: string): Promise<void> {
    if (this.#pending.has(rel)) await this.commit();
  }

  async #record(rel: string, extra: { hash?: string; target?: string }): Promise<void> {
    const e = await statEntry(this.#abs(rel));
    if (!e) return;
    const rec = recordOf(rel, e, extra);
    this.manifest.set(rel, rec);
    this.#store.putFile(rec);
  }

  #persistTree(from: string, to: string): void {
    this.#store.tx(() => {
      const prefix = `${from}/`;
      for (const rel of this.#store.loadFiles().keys()) {
        if (rel === from || rel.startsWith(prefix)) this.#store.deleteFile(rel);
      }
      const toPrefix = `${to}/`;
      for (const [rel, rec] of this.manifest)
        if (rel === to || rel.startsWith(toPrefix)) this.#store.putFile(rec);
    });
  }

  async #write(op: WriteOp): Promise<void> {
    let cur = this.#current;
    if (op.part === 0) {
      if (cur) throw new Error(`file ${op.path} started before ${cur.op.path} ended`);
      cur = await this.#begin(op);
      this.#current = cur;
    } else if (!cur || cur.op.path !== op.path) {
      throw new Error(`part ${op.part} of ${op.path} without its start`);
    }
    if (cur.queue) cur.queue.push(op.data);
    else if (op.data.length > 0) {
      cur.hasher!.update(op.data);
      let o = 0;
      while (o < op.data.length) o += (await cur.fh.write(op.data, o, op.data.length - o)).bytesWritten;
      cur.written += op.data.length;
    }
    if (!op.last) return;
    this.#current = null;
    try {
      await this.#finish(cur, op);
    } catch (err) {
      await cur.fh.close().catch(() => {});
      await unlink(cur.tmp).catch(() => {});
      throw err;
    } finally {
      await cur.basis?.close();
    }
  }

  async #begin(op: WriteOp): Promise<InFlight> {
    const tmp = join(this.#tmpDir, `${randomBytes(8).toString('hex')}.part`);
    const fh = await open(tmp, 'wx', 0o600);
    let basis: FileHandle | null = null;
    if (op.encoding === 'delta') {
      const rec = this.manifest.get(op.path);
      const e = await statEntry(this.#abs(op.path));
      const usable =
        rec !== undefined &&
        rec.hash === op.baseHash &&
        e?.kind === 'file' &&
        rec.size === e.size &&
        rec.mtimeMs === e.mtimeMs;
      if (!usable) {
        await fh.close();
        await unlink(tmp);
        throw new ResyncNeeded(`${op.path}: the mirror's copy is not the delta's basis`);
      }
      basis = await open(this.#abs(op.path), 'r');
      const queue = new AsyncQueue<Uint8Array>();
      const patching = patchInto(basis, queue, fh);
      patching.catch(() => {});
      return { op, fh, tmp, basis, queue, patching, hasher: null, written: 0 };
    }
    return { op, fh, tmp, basis: null, queue: null, patching: null, hasher: createHasher(), written: 0 };
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
      await cur.fh.close();
      await unlink(cur.tmp);
      return;
    }
    if (hash !== last.hash || size !== last.size) {
      throw new Error(`${last.path}: content hash ${hash}/${size} does not match ${last.hash}/${last.size}`);
    }
    await cur.fh.chmod(last.mode);
    await cur.fh.utimes(utimeOf(last.mtimeMs), utimeOf(last.mtimeMs));
    const prev = this.#pending.get(last.path);
    if (prev) {
      await prev.fh.close();
      await unlink(prev.tmp).catch(() => {});
    }
    this.#pending.set(last.path, {
      fh: cur.fh,
      tmp: cur.tmp,
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
    if (this.#pending.size >= MAX_PENDING || this.#pendingBytes >= MAX_PENDING_BYTES) await this.commit();
  }

  /** Makes every pending file durable and visible: fsync all, rename all, fsync their folders. */
  async commit(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    this.#pendingBytes = 0;
    await Promise.all(batch.map((p) => p.fh.sync()));
    await Promise.all(batch.map((p) => p.fh.close()));
    const dirs = new Set<string>();
    for (const p of batch) {
      const e = await statEntry(this.#abs(p.rel));
      if (e) {
        if (e.kind === 'dir' || !(await this.isOurs(p.rel, e))) await this.#clear(p.rel);
      } else {
        await this.#ensureParent(p.rel);
      }
      await rename(p.tmp, this.#abs(p.rel));
      dirs.add(dirname(this.#abs(p.rel)));
    }
    await Promise.all(
      [...dirs].map(async (d) => {
        const fh = await open(d, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }),
    );
    const recs: FileRecord[] = [];
    for (const p of batch) {
      const e = await statEntry(this.#abs(p.rel));
      if (e) recs.push({ ...p.rec, ino: e.ino, ctimeMs: e.ctimeMs, mtimeMs: e.mtimeMs });
    }
    this.#store.tx(() => {
      for (const r of recs) {
        this.manifest.set(r.path, r);
        this.#store.putFile(r);
      }
    });
  }

  /** Drops a half-received file (connection lost mid-transfer). */
  async abandon(): Promise<void> {
    const cur = this.#current;
    this.#current = null;
    if (!cur) return;
    cur.queue?.end();
    await cur.patching?.catch(() => {});
    await cur.fh.close().catch(() => {});
    await cur.basis?.close().catch(() => {});
    await unlink(cur.tmp).catch(() => {});
  }

  /** The mirror's own hash of a local file (for reconcile), or null if it is not a regular file. */
  async hashLocal(rel: string): Promise<string | null> {
    try {
      const fh = await open(this.#abs(rel), 'r');
      try {
        const h = createHasher();
        const buf = Buffer.allocUnsafe(1 << 20);
        let pos = 0;
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (!bytesRead) break;
          h.update(buf.subarray(0, bytesRead));
          pos += bytesRead;
        }
        return hashToHex(h.digest());
      } finally {
        await fh.close();
      }
    } catch {
      return null;
    }
  }

  /** Records a local file as ours (it matched the primary's content during reconcile). */
  async adopt(rel: string, hash: string): Promise<void> {
    await this.#record(rel, { hash });
  }

  async readLink(rel: string): Promise<string | null> {
    return readlink(this.#abs(rel)).catch(() => null);
  }

  async statLocal(rel: string): Promise<DiskEntry | null> {
    return statEntry(this.#abs(rel));
  }

  /** Removes (or preserves) a local path that the primary does not have. */
  async removeExtra(rel: string): Promise<void> {
    await this.#clear(rel);
    this.#store.deleteFile(rel);
  }

  /** Sets mode/mtime on a file the primary and mirror agree on. */
  async fixMeta(rel: string, mode: number, mtimeMs: number): Promise<void> {
    await chmod(this.#abs(rel), mode);
    await lutimes(this.#abs(rel), utimeOf(mtimeMs), utimeOf(mtimeMs));
    const rec = this.manifest.get(rel);
    await this.#record(rel, rec?.hash ? { hash: rec.hash } : {});
  }
}
