/*
 * Applies operations to the mirror's folder, in order, durably, and only inside the root.
 *
 * This folder:
 *   applier.ts      the Applier: dispatch of each op, and the API the mirror and reconciler use;
 *   safe-paths.ts   path safety: every wire path becomes an absolute one only through it;
 *   preserve.ts     clearing the way: what the mirror wrote goes, anything else is moved under
 *                   diverged/ first;
 *   assembly.ts     a write rebuilt from its parts (whole, full or delta) in a verified temp file;
 *   group-commit.ts the pending group of assembled files, and its landing;
 *   moves.ts        renames and hard links: names moved or added without new content;
 *   path-meta.ts    owner, mode, xattrs and ns times of a path, in the order that keeps them
 *                   (owners.ts and xattrs.ts: what this mirror may set of each);
 *   errors.ts       ERR_BASIS_MISMATCH, ERR_APPLY and ERR_LAND.
 *
 * How an op flows: `apply` dispatches it (a tree change first waits for the landing under way).
 * Safety: its path goes through `SafePaths` (relative, normalised, no parent a symlink or a
 * file), so nothing is ever written, moved or removed through a link, whatever order operations
 * arrive in. An op that only removes or adjusts (delete, meta, a rename's old name) takes a
 * path below a link or a file as already absent, not as an error: a replay after a partly
 * applied batch meets exactly that (`d/x` deleted, then `d` made a link); an op that creates a
 * path clears a file of its own where a folder on the way belongs. Assembly: a write is rebuilt
 * in a temp file under the state folder (never under its final name), verified against its
 * hash, given its mode and mtime, and kept open. Group commit: it waits with the others until
 * `commit` (or `commitSoon`, or a full group). Landing: all pending temp files are made durable
 * at once (an fsync each, or one syncfs for a large group), each final path is checked again,
 * they are renamed into place and their folders made durable the same way; only after that is
 * the batch's sequence recorded and acknowledged. I/O is synchronous except the fsyncs, which
 * run in parallel on the thread pool, and syncfs, which runs in a helper process (fs-sync.ts).
 */

import { mkdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Op, WriteOp } from '@mimic/wire';
import { attrsOf, type DiskEntry, type Meta, readFileVersion, statEntrySync } from '../../node/local-fs.js';
import type { Logger } from '../../node/log.js';
import { under } from '../../node/paths.js';
import type { FileRecord, Manifest, Store } from '../../node/store.js';
import { Assembler, type Assembly } from './assembly.js';
import { ApplyError, ResyncNeeded } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { type Extra, linkFile, type MoveSite, renameTree } from './moves.js';
import { PathMeta, setTimes } from './path-meta.js';
import { Clearer, isOurs } from './preserve.js';
import { SafePaths } from './safe-paths.js';

export { ApplyError, LandingError, ResyncNeeded } from './errors.js';

export class Applier {
  readonly manifest: Manifest;
  readonly root: string;
  readonly #store: Store;
  readonly #paths: SafePaths;
  readonly #clearer: Clearer;
  readonly #assembler: Assembler;
  readonly #group: GroupCommit;
  /** Folder metadata waiting for the files below it to be committed. */
  #dirMeta = new Map<string, Meta>();
  #current: Assembly | null = null;
  /** What renames and links need of the applier. */
  readonly #site: MoveSite;
  preserved = 0;
  /** Paths this node wrote as a primary after its epoch was superseded: kept, never overwritten. */
  keep = new Set<string>();
  /** Called before an op other than a write changes the tree (after any landing before it). */
  beforeTreeChange: () => void = () => {};
  /** Which of the primary's owners, groups and xattrs this mirror sets, and what it could not. */
  readonly meta: PathMeta;

  constructor(root: string, store: Store, tmpDir: string, diverged: () => string, log: Logger) {
    this.root = root;
    this.meta = new PathMeta(log);
    this.#store = store;
    this.manifest = store.loadFiles();
    this.#paths = new SafePaths(root, (rel) => this.#clearer.clear(rel));
    this.#clearer = new Clearer(this, this.#paths, diverged, log);
    this.#assembler = new Assembler(
      tmpDir,
      async () => {
        if (this.#group.size === 0) return false;
        await this.commit(); // out of descriptors: the pending files give theirs back
        return true;
      },
      {
        owner: (fd, op) => this.meta.owners.set({ fd }, op),
        xattrs: (tmp, op) => this.meta.xattrs.set(tmp, op.xattrs),
      },
    );
    this.#group = new GroupCommit(root, store, this.manifest, {
      placeFor: (rel, parents) => this.#placeFor(rel, parents),
      afterLanding: () => this.#applyDirMeta(),
    });
    this.#site = {
      root,
      manifest: this.manifest,
      store,
      paths: this.#paths,
      clearer: this.#clearer,
      tmpDir,
      flushUnder: (rel) => this.#flushIfPendingUnder(rel),
      record: (rel, abs, extra) => this.#record(rel, abs, extra),
    };
  }

  /** Ends the helper that runs syncfs (after the last commit). */
  close(): void {
    this.#group.close();
  }

  /** Removes temp files a crash left behind, and learns the umask new files get. */
  async init(): Promise<void> {
    this.#assembler.init();
  }

  get busy(): boolean {
    return this.#current !== null;
  }

  get hasPending(): boolean {
    return this.#group.size > 0;
  }

  /** A background commit is still on its way (its syncs, renames or record). */
  get landing(): boolean {
    return this.#group.landing;
  }

  /** True when the path on disk is exactly what this mirror last wrote there. */
  isOurs(rel: string, e: DiskEntry | null): boolean {
    return isOurs(this, rel, e);
  }

  /** Applies one op (or one part of a write). Resolves when it is applied (writes: pending commit). */
  async apply(op: Op): Promise<void> {
    if (op.kind === 'write') return this.#write(op);
    if (this.#current) throw new ApplyError(`a ${op.kind} arrived in the middle of ${this.#current.op.path}`);
    // Anything that changes the tree waits for the files being renamed into it: their paths
    // were checked against the tree as it was.
    await this.#group.landed();
    this.beforeTreeChange();
    switch (op.kind) {
      case 'mkdir': {
        await this.#flushIfPendingUnder(op.path);
        const abs = await this.#paths.toCreate(op.path);
        const e = statEntrySync(abs);
        if (e && e.kind !== 'dir') await this.#clearer.clear(op.path);
        if (e?.kind !== 'dir') {
          await this.#paths.ensureParent(op.path);
          mkdirSync(abs, { mode: op.mode });
        }
        this.meta.set(abs, op, 'dir');
        this.#record(op.path, abs, op.xattrs ? { xattrs: op.xattrs } : {});
        return;
      }
      case 'symlink': {
        await this.#flushIfPendingUnder(op.path);
        this.#paths.forget();
        const abs = await this.#paths.toCreate(op.path);
        await this.#clearer.clear(op.path);
        await this.#paths.ensureParent(op.path);
        symlinkSync(op.target, abs);
        this.meta.set(abs, op, 'symlink');
        this.#record(op.path, abs, { target: op.target });
        return;
      }
      case 'delete': {
        await this.#flushIfPendingUnder(op.path);
        this.#paths.forget();
        // Below what is now a link or a file, or not there at all (a replay after a partly
        // applied batch): already absent. Nothing is looked at or removed through the link.
        const abs = await this.#paths.orAbsent(op.path);
        if (abs === null || !statEntrySync(abs)) {
          this.#forgetTree(op.path);
          return;
        }
        await this.#clearer.clear(op.path);
        // Clearing dropped the subtree from memory; the store's rows below it go too.
        this.#store.deleteTree(op.path);
        return;
      }
      case 'rename':
        return renameTree(this.#site, op.from, op.to);
      case 'link':
        return linkFile(this.#site, op);
      case 'meta': {
        const abs = await this.#paths.orAbsent(op.path);
        if (abs === null) return; // below a link or a file now: nothing here to change
        const e = statEntrySync(abs);
        if (e?.kind === 'dir' && this.#group.hasPendingUnder(op.path)) {
          // Files still to land below would change the folder's time again: set it after
          // the commit that renames them, rather than forcing that commit now.
          this.#dirMeta.set(op.path, op);
          return;
        }
        await this.#flushIfPendingUnder(op.path);
        this.#setMeta(op.path, abs, op);
        return;
      }
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

  async #flushIfPendingUnder(rel: string): Promise<void> {
    if (this.#group.hasPendingUnder(rel)) await this.commit();
  }

  #setMeta(rel: string, abs: string, m: Meta, checked = false): void {
    const e = checked ? null : statEntrySync(abs);
    if (!checked && (!e || e.kind === 'symlink' || !this.isOurs(rel, e))) return;
    this.meta.set(abs, m, e?.kind ?? 'file');
    const rec = this.manifest.get(rel);
    const extra: Extra = rec?.hash ? { hash: rec.hash } : {};
    if (rec?.link) extra.link = rec.link;
    if (m.xattrs) extra.xattrs = m.xattrs;
    this.#record(rel, abs, extra);
  }

  #record(rel: string, abs: string, extra: Extra): void {
    const e = statEntrySync(abs);
    if (!e) return;
    const { kind, size, mtimeMs, mode, ino, ctimeMs } = e;
    const rec: FileRecord = { path: rel, kind, size, mtimeMs, mode, ...attrsOf(e), ino, ctimeMs, ...extra };
    this.manifest.set(rel, rec);
    this.#store.putFile(rec);
  }

  async #write(op: WriteOp): Promise<void> {
    let cur = this.#current;
    if (op.part === 0) {
      if (cur) throw new ApplyError(`file ${op.path} started before ${cur.op.path} ended`);
      if (this.#group.failed) await this.#group.landed();
      // A delta's basis is the version last sent: it may still be on its way into place.
      if (op.encoding === 'delta' && this.#group.onItsWay(op.path)) await this.commit();
      await this.#paths.toCreate(op.path);
      if (op.last && op.encoding === 'full') {
        const file = await this.#assembler.whole(op);
        if (file) await this.#group.add(file);
        return;
      }
      cur = await this.#assembler.begin(op, op.encoding === 'delta' ? await this.#basisOf(op) : null);
      this.#current = cur;
    } else if (!cur || cur.op.path !== op.path || op.part !== cur.nextPart) {
      throw new ApplyError(`part ${op.part} of ${op.path} out of order`);
    }
    await this.#assembler.add(cur, op.data, op.offset);
    if (!op.last) return;
    this.#current = null;
    const file = await this.#assembler.finish(cur, op);
    if (file) await this.#group.add(file);
  }

  /** The mirror's copy of a delta's file, if it is the delta's basis; else ResyncNeeded. */
  async #basisOf(op: WriteOp): Promise<string> {
    const abs = await this.#paths.safe(op.path);
    const rec = this.manifest.get(op.path);
    const e = statEntrySync(abs);
    const usable =
      rec !== undefined &&
      rec.hash === op.baseHash &&
      e?.kind === 'file' &&
      rec.size === e.size &&
      rec.mtimeMs === e.mtimeMs &&
      !this.keep.has(op.path);
    if (!usable) throw new ResyncNeeded(`${op.path}: the mirror's copy is not the delta's basis`);
    return abs;
  }

  /** Where a pending file lands: checked again, anything not ours in the way kept. */
  async #placeFor(rel: string, parents: Set<string>): Promise<string> {
    const abs = await this.#paths.safe(rel);
    const e = statEntrySync(abs);
    if (e) {
      if (e.kind === 'dir' || !this.isOurs(rel, e)) await this.#clearer.clear(rel);
    } else if (!parents.has(dirname(rel))) {
      await this.#paths.ensureParent(rel);
      parents.add(dirname(rel));
    }
    return abs;
  }

  /**
   * Makes every pending file durable and visible: sync all, rename all, sync their folders.
   * `record` runs in the same transaction as the manifest rows of the files (or alone when
   * none is pending): the caller's note of what is now applied.
   */
  async commit(record?: () => void): Promise<void> {
    await this.#group.commit(record);
  }

  /**
   * `commit` in the background: resolves once the files are on their way (after the previous
   * background commit, if one is still running), while their fsyncs run on the thread pool and
   * the next files are rebuilt. `done` is called once they are durable and visible, with the
   * error if that failed (the next op then fails with it too).
   */
  async commitSoon(record?: () => void, done?: (err?: Error) => void): Promise<void> {
    await this.#group.commitSoon(record, done);
  }

  /** Folder times held back for their files, deepest first now that those files landed. */
  async #applyDirMeta(): Promise<void> {
    if (this.#dirMeta.size === 0) return;
    const waiting = [...this.#dirMeta].sort((x, y) => y[0].length - x[0].length);
    this.#dirMeta.clear();
    for (const [rel, m] of waiting) {
      try {
        this.#setMeta(rel, await this.#paths.safe(rel), m);
      } catch {
        // Gone or no longer a plain folder: a later op says what it became.
      }
    }
  }

  /** Drops a half-received file (connection lost mid-transfer). */
  async abandon(): Promise<void> {
    await this.#group.abandon(); // a failed landing was reported already; the next connection starts clean
    const cur = this.#current;
    this.#current = null;
    if (cur) await this.#assembler.drop(cur);
  }

  /** The mirror's own hash of a local file (for reconcile), or null if it is not a regular file. */
  async hashLocal(rel: string): Promise<string | null> {
    try {
      return (await readFileVersion(await this.#paths.safe(rel)))?.hash ?? null;
    } catch {
      return null;
    }
  }

  /** Records a local file as ours (it matched the primary's content during reconcile). */
  async adopt(rel: string, hash: string): Promise<void> {
    this.#record(rel, await this.#paths.safe(rel), { hash });
  }

  async readLink(rel: string): Promise<string | null> {
    try {
      return readlinkSync(await this.#paths.safe(rel));
    } catch {
      return null;
    }
  }

  async statLocal(rel: string): Promise<DiskEntry | null> {
    return statEntrySync(await this.#paths.safe(rel));
  }

  /** Removes (or preserves) a local path that the primary does not have. */
  async removeExtra(rel: string): Promise<void> {
    await this.#clearer.clear(rel);
    this.#store.deleteFile(rel);
  }

  /** Sets a folder's mtime (after everything below it has landed). */
  async setDirTime(rel: string, mtimeMs: number, mtimeNs?: number): Promise<void> {
    await this.commit();
    const abs = await this.#paths.safe(rel);
    if (statEntrySync(abs)?.kind !== 'dir') return;
    setTimes(abs, mtimeMs, mtimeNs);
    const xattrs = this.manifest.get(rel)?.xattrs;
    this.#record(rel, abs, xattrs ? { xattrs } : {});
  }

  /** Sets owner, mode and mtime on a file the primary and mirror agree on. */
  async fixMeta(rel: string, m: Meta): Promise<void> {
    this.#setMeta(rel, await this.#paths.safe(rel), m, true);
  }
}
