import { EventEmitter } from 'node:events';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { yieldToLoop } from '@mimic/delta';
import type { Epoch } from '@mimic/wire';
import {
  attrsOf,
  type DiskEntry,
  readLinkTarget,
  sameMeta,
  sameOwner,
  sameXattrs,
  statEntry,
  walkFolders,
} from '../node/local-fs.js';
import type { Pacer } from '../node/pacer.js';
import type { FileRecord, Manifest, Store } from '../node/store.js';
import type { XattrReader } from '../node/xattr-reader.js';
import { RecentContent } from './recent-content.js';
import type { DatabaseImages } from './sqlite-snapshot.js';
import {
  BatchJournal,
  BatchRows,
  byDepth,
  metaRow,
  type Present,
  readAtOf,
  statsMatch,
  UNSTATED,
} from './tracker-batch.js';
import { TrackerIdle } from './tracker-idle.js';
import { HardLinks } from './tracker-links.js';
import { FileReads, inRealFolders } from './tracker-read.js';
import { GoneHoldBack, HOLD_GONE_MS, pairRenames } from './tracker-renames.js';
import { ManifestTree } from './tracker-tree.js';

/*
 * Turns "this path may have changed" into journal operations.
 *
 * How a watcher event becomes a journal row:
 * 1. `mark(rel)` puts the path in the dirty set (forced: the content is always re-read, since
 *    a rewrite can keep size and mtime; a scan's marks are not forced, and carry the lstat it
 *    made) and starts a run if none is going (tracker-idle.ts).
 * 2. The run takes the dirty set in batches (FIRST_BATCH growing to MAX_BATCH), parents before
 *    children. Paths marked while a batch runs form the next one: rapid changes coalesce.
 * 3. Each path of a batch is lstat'ed: found on disk it is present, not found it is gone.
 * 4. Renames are paired (tracker-renames.ts): a present path with a vanished path's inode (gone
 *    in this batch, or in the manifest and no longer on disk) is a rename row, and the manifest
 *    subtree moves now. A second name of an inode still on disk is a hard link: a new file.
 * 5. A path gone for the first time is held back (tracker-renames.ts) and looked at again after
 *    HOLD_GONE_MS, with its folder's new entries, so its new name can still claim it; gone
 *    again then, it is a delete row.
 * 6. Each present path is looked at: a folder gives a mkdir or meta row, a link a symlink row,
 *    a file is read (tracker-read.ts; not if its stat shows it unchanged): a write or meta row.
 * 7. The rows go to the journal and the manifest in one transaction (tracker-batch.ts): a
 *    rename's manifest moves first, a crash never leaving a manifest that shows a change the
 *    journal lacks; ops in the order renames, deletes, mkdirs, symlinks, writes, metadata.
 *    Then 'appended' tells the sender.
 */

export interface ChangeTrackerEvents {
  /** Rows up to `lastSeq` journaled, with `bytes` of file content among them. */
  appended: [lastSeq: number, bytes: number];
  error: [err: Error];
}

/**
 * A new folder is listed when found and once more this much later: a folder being filled as it
 * was found (mkdir -p of a deep path on a busy machine) can have its first listing come before
 * its contents, or come between a file's creation and its write, and the watcher's own watch on
 * it come after them.
 */
const NEW_FOLDER_RELOOK_MS = 100;
/**
 * A folder whose last change is older than the watcher's start by this much was watched before
 * anything since was made in it: the scan lists it, and the watcher reports what comes later.
 */
const WATCHED_BEFORE_SLACK_MS = 1000;
/** Longest stretch of work between two turns of the event loop. */
const TURN_MS = 20;
/**
 * Paths per batch: a backlog (a start-up scan) starts small, so the first rows reach mirrors
 * while the rest is read, and grows to the largest, where per-batch costs stop mattering.
 */
const FIRST_BATCH = 256;
const MAX_BATCH = 4096;
/** Content of files just read (each at most one part), kept for the sender. */
const RECENT_BYTES = 64 * 1024 * 1024;
/** Most paths a scan leaves marked before it waits for them to be done. */
const SCAN_BACKLOG = 16_384;

export class ChangeTracker extends EventEmitter<ChangeTrackerEvents> {
  readonly manifest: Manifest;
  /** What small files just read hold, for their first send (see RecentContent). */
  readonly recent = new RecentContent(RECENT_BYTES);
  /** Whether changes may still be journaled (checked before every journal write). */
  gate: () => boolean = () => true;
  /** Extended attributes as this primary sends them. */
  readonly xattrs: XattrReader;
  /** Images of the SQLite databases of the folder, sent in their place. */
  readonly images: DatabaseImages;
  readonly #root: string;
  /** The root with one trailing slash: a relative path appended makes its absolute path. */
  readonly #rootSlash: string;
  readonly #skip: (rel: string, isDir: boolean) => boolean;
  /** The manifest, with its index by inode. */
  readonly #tree: ManifestTree;
  readonly #journal: BatchJournal;
  readonly #state = new TrackerIdle();
  readonly #holdBack = new GoneHoldBack();
  readonly #reads: FileReads;
  #dirty = new Map<string, boolean>();
  /** What a scan's lstat just found for a path it marked: the batch need not lstat it again. */
  #scanned = new Map<string, DiskEntry>();
  #closed = false;
  /** When the watcher began covering every folder (told by the first scan; never, until then). */
  #watchedSince = Number.NEGATIVE_INFINITY;

  constructor(
    root: string,
    store: Store,
    skip: (rel: string, isDir: boolean) => boolean,
    epoch: () => Epoch,
    reads: { xattrs: XattrReader; images: DatabaseImages },
  ) {
    super();
    this.xattrs = reads.xattrs;
    this.images = reads.images;
    this.#root = resolve(root);
    this.#rootSlash = this.#root === '/' ? '/' : `${this.#root}/`;
    this.#skip = skip;
    this.manifest = store.loadFiles({ byIno: true });
    this.images.prune(
      (function* (m) {
        for (const r of m.values()) if (r.hash !== undefined) yield [r.path, r.hash] as const;
      })(this.manifest),
    );
    this.#tree = new ManifestTree(this.manifest, (rel) => this.recent.delete(rel));
    this.#journal = new BatchJournal(store, epoch);
    this.#reads = new FileReads({
      abs: (rel) => this.#abs(rel),
      recent: this.recent,
      later: (rel, forced, ms) => this.#later(rel, forced, ms),
      commit: (rows) => this.#commitRows(rows),
      xattrs: this.xattrs,
      links: new HardLinks((rel) => this.#abs(rel)),
      images: this.images,
      drop: (rel, rows) => this.#tree.dropTree(rel, rows.dels),
      readAt: (rel) => this.manifest.readAt(rel),
    });
  }

  /** Where `rel` (a normalized relative path, as the manifest keeps them) is on disk. */
  #abs(rel: string): string {
    return this.#rootSlash + rel;
  }

  /** A batch is being read and journaled (or paths wait for one). */
  get busy(): boolean {
    return this.#state.running;
  }

  get lastSeq(): number {
    return this.#journal.lastSeq;
  }

  close(): void {
    this.#closed = true;
  }

  /**
   * Marks a path for a look; `forced` re-reads a file's content even if its stat is unchanged.
   * `seen`: what the caller's lstat just found there (the look then needs no lstat of its own).
   */
  mark(rel: string, forced = true, seen?: DiskEntry): void {
    if (this.#closed || this.#skip(rel, false)) return;
    if (seen) this.#scanned.set(rel, seen);
    else this.#scanned.delete(rel);
    this.#dirty.set(rel, (this.#dirty.get(rel) ?? false) || forced);
    if (this.#state.begin()) setImmediate(() => void this.#run());
  }

  /**
   * Walks the whole tree and marks whatever differs from the manifest, and what vanished.
   * `watchedSince`: when the watcher began covering every folder. A file read after that needs
   * no new look (any later change has an event of its own): the scan that follows the watcher's
   * start skips their lstat. Periodic rescans, there for missed events, pass nothing, and a
   * `pacer` that keeps them to a share of the time.
   */
  async scan(watchedSince?: number, pacer?: Pacer): Promise<void> {
    if (watchedSince !== undefined) this.#watchedSince = watchedSince;
    const manifest = this.manifest;
    const first = manifest.size === 0;
    const noStat = first
      ? () => true
      : watchedSince === undefined
        ? undefined
        : (rel: string) => (manifest.readAt(rel) ?? 0) > watchedSince;
    const walk = manifest.beginWalk();
    for await (const found of walkFolders(this.#root, this.#skip, noStat)) {
      for (const { rel, entry } of found) {
        manifest.seen(rel, walk);
        if (!entry) {
          if (first) this.mark(rel, false, UNSTATED);
          continue;
        }
        if (!statsMatch(manifest.get(rel), entry)) this.mark(rel, false, entry);
      }
      await pacer?.step();
      // A first scan marks every path: taken a backlog at a time, it holds only that in memory.
      while (this.#dirty.size >= SCAN_BACKLOG && this.#state.running) await this.#state.nextBatch();
    }
    for (const rel of manifest.unseen(walk)) this.mark(rel, false);
    await this.idle();
  }

  /** Resolves once no batch is running and nothing is marked. */
  idle(): Promise<void> {
    return this.#state.idle();
  }

  /** Resolves once nothing is running, marked, or scheduled for a later look (a second look, a retry). */
  settled(): Promise<void> {
    return this.#state.settled();
  }

  /** Looks at `rel` again after `ms`; `settled()` waits for it. */
  #later(rel: string, forced: boolean, ms: number): void {
    this.#state.after(ms, () => this.mark(rel, forced));
  }

  async #run(): Promise<void> {
    try {
      let size = FIRST_BATCH;
      while (this.#dirty.size > 0 && !this.#closed) {
        const batch: [string, boolean][] = [];
        for (const entry of this.#dirty) {
          batch.push(entry);
          if (batch.length === size) break;
        }
        size = Math.min(MAX_BATCH, size * 2);
        for (const [rel] of batch) this.#dirty.delete(rel);
        await this.#process(batch);
        this.#state.batchDone();
      }
    } catch (err) {
      this.emit('error', err as Error);
    } finally {
      this.#state.end();
    }
  }

  async #process(unsorted: [string, boolean][]): Promise<void> {
    const batch = byDepth(unsorted);
    const gone: FileRecord[] = [];
    const present: Present[] = [];
    const folders = new Map<string, boolean>();
    for (const [rel, forced] of batch) {
      const old = this.manifest.get(rel);
      let entry: DiskEntry | null | undefined = this.#scanned.get(rel);
      this.#scanned.delete(rel);
      // Something is known of the path since it was listed: a plain lstat then.
      if (!entry || (entry === UNSTATED && old)) entry = await statEntry(this.#abs(rel));
      // Below what is now a link (or a file), a path is gone: its lstat went through the link.
      if (entry && !inRealFolders(this.#rootSlash, rel, folders)) entry = null;
      // Folder-only patterns (`build/`) are checked on folders; one sent before stays as mirrors have it.
      const excluded = entry?.kind === 'dir' && this.#skip(rel, true);
      if (excluded && old?.kind === 'dir') continue;
      if (excluded) entry = null;
      if (!entry) {
        this.#reads.forget(rel);
        if (old) gone.push(old);
      } else {
        present.push({ rel, entry, old, forced });
      }
    }
    const rows = new BatchRows();
    await pairRenames(this.#tree, (rel) => this.#abs(rel), gone, present, rows);
    const held = (g: FileRecord) => {
      this.#later(g.path, false, HOLD_GONE_MS);
      this.#lookAround(g.path);
    };
    for (const g of this.#holdBack.release(gone, held)) {
      rows.deletes.push({ kind: 'delete', path: g.path });
      this.#tree.dropTree(g.path, rows.dels);
    }
    let turnAt = Date.now();
    for (const p of present) {
      // Hashing thousands of small files never blocks sockets and timers for long.
      if (Date.now() - turnAt >= TURN_MS) {
        await yieldToLoop();
        turnAt = Date.now();
      }
      await this.#look(p, rows);
    }
    this.#commitRows(rows);
  }

  /** Adds what `p` became since the manifest's record of it to the batch's rows. */
  async #look(p: Present, rows: BatchRows): Promise<void> {
    const { rel, entry } = p;
    let old = this.manifest.get(rel);
    if (old && old.kind !== entry.kind) {
      rows.deletes.push({ kind: 'delete', path: rel });
      this.#tree.dropTree(rel, rows.dels);
      old = undefined;
    }
    if (entry.kind === 'file') return this.#reads.look(p, old, rows);
    // A folder's attributes (its default ACL) are read again only when its ctime moved.
    const xattrs =
      entry.kind !== 'dir'
        ? undefined
        : old?.ino === entry.ino && old.ctimeMs === entry.ctimeMs
          ? old.xattrs
          : this.xattrs.read(this.#abs(rel));
    const base: FileRecord = {
      path: rel,
      kind: entry.kind,
      size: entry.size,
      mtimeMs: entry.mtimeMs,
      mode: entry.mode,
      ...attrsOf({ ...entry, xattrs }),
      ino: entry.ino,
      ctimeMs: entry.ctimeMs,
    };
    if (entry.kind === 'dir') {
      if (!old) {
        rows.mkdirs.push({
          kind: 'mkdir',
          path: rel,
          mode: entry.mode,
          mtimeMs: entry.mtimeMs,
          ...attrsOf(entry),
        });
        // Whatever was made inside before the watcher watched the new folder (mkdir -p a/b/c
        // and a file in it, at once) is found here rather than at the next rescan. Listed
        // twice: the writer may still be making or writing what goes in it as it is listed
        // now, so the second listing looks at every entry again (an lstat each; a file is read
        // again only if it changed). A folder untouched since before the watcher started needs
        // neither: the scan lists it, and its watch reports the rest.
        if (entry.ctimeMs >= this.#watchedSince - WATCHED_BEFORE_SLACK_MS) {
          this.#markNew(rel);
          this.#state.after(NEW_FOLDER_RELOOK_MS, () => this.#markNew(rel, true));
        }
      } else if (!sameMeta(old, entry) || !sameXattrs(old.xattrs, xattrs))
        rows.metas.push(metaRow(rel, entry));
      rows.puts.push(base);
    } else {
      const target = await readLinkTarget(this.#abs(rel));
      if (target === null || target === '') return;
      if (!old || old.target !== target || !sameOwner(old, entry))
        rows.links.push({ kind: 'symlink', path: rel, target, mtimeMs: entry.mtimeMs, ...attrsOf(entry) });
      rows.puts.push({ ...base, target });
    }
  }

  /**
   * Journals what the batch has found so far; the rest of it follows in later rows. Ops keep
   * their order (renames, deletes, folders, links, writes, metadata) within each commit, and the batch
   * is in depth order, so a folder's mkdir never trails a write into it.
   */
  #commitRows(rows: BatchRows): void {
    const commit = rows.take();
    // A primary that may no longer write (fenced, or past its lease) journals nothing more.
    if (!this.gate()) return;
    this.#journal.write(commit);
    for (const rec of commit.puts) this.#tree.remember(rec, readAtOf(rec));
    if (commit.ops.length === 0) return;
    let bytes = 0;
    for (const op of commit.ops) if (op.kind === 'write') bytes += op.size;
    this.emit('appended', this.#journal.lastSeq, bytes);
  }

  /**
   * A vanished path's new name is usually in the same folder. Watchers under load can report
   * the vanishing and miss the arrival, so the folder's new entries are marked too.
   */
  #lookAround(path: string): void {
    const slash = path.lastIndexOf('/');
    this.#markNew(slash < 0 ? '' : path.slice(0, slash));
  }

  /**
   * Marks the entries of folder `dir` ('' for the root) that the manifest does not know, or with
   * `all`, every entry (those it knows get a stat check).
   */
  #markNew(dir: string, all = false): void {
    let names: string[];
    try {
      names = readdirSync(dir === '' ? this.#root : this.#abs(dir));
    } catch {
      return;
    }
    for (const name of names) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      // Already marked (a scan found it): marking again would only drop the scan's lstat.
      if ((all || !this.manifest.has(rel)) && !this.#dirty.has(rel)) this.mark(rel, false);
    }
  }
}
