import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, lstatSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { yieldToLoop } from '@mimic/delta';
import type { Epoch } from '@mimic/wire';
import { crashPoint } from '../node/crash-point.js';
import {
  type DiskEntry,
  entryOf,
  openToRead,
  readLinkTarget,
  readOpenedVersion,
  sameVersion,
  statEntry,
  walkFolders,
} from '../node/local-fs.js';
import type { FileRecord, JournalOp, Store } from '../node/store.js';
import { RecentContent } from './recent-content.js';
import { PART_BYTES } from './write-parts.js';

/*
 * Turns "this path may have changed" into journal operations.
 *
 * Paths arrive from the watcher (forced: the content is always re-read, since a rewrite can
 * keep size and mtime) and from scans (checked by lstat against the manifest first). Each
 * batch is resolved against the manifest and written to the journal and manifest in one
 * transaction (a rename's manifest rows too: a crash never leaves a manifest that shows a
 * change the journal lacks), in this order: renames (a vanished path and a new one with the same inode),
 * deletes, mkdirs, symlinks, writes, metadata changes. Batches run one at a time; paths
 * marked while a batch runs form the next one, which is how rapid changes coalesce.
 */

interface Present {
  rel: string;
  entry: DiskEntry;
  old: FileRecord | undefined;
  forced: boolean;
  /** Arrived here by a rename in this batch. */
  renamed?: boolean;
}

/**
 * A regular file by its folder's listing, not stat'ed: what a first scan (nothing in the
 * manifest, so no rename to pair by inode) marks new files with. Its look opens it first and
 * takes its stat from the descriptor, one path lookup where an lstat would make two.
 */
const UNSTATED: DiskEntry = Object.freeze({
  kind: 'file',
  size: -1,
  mtimeMs: 0,
  mode: 0,
  ino: -1,
  ctimeMs: 0,
});

export interface ChangeTrackerEvents {
  appended: [lastSeq: number];
  error: [err: Error];
}

const RETRY_UNSTABLE_MS = 20;
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
const HOLD_GONE_MS = 30;
/** Kernel timestamps advance in ticks of a few ms; a read this long after a change saw it. */
const CTIME_SLACK_MS = 20;
/** Files at least this large are read again for a late watcher event only after a pause. */
const RECHECK_LATER_BYTES = 8 * 1024 * 1024;
const RECHECK_LATER_MS = 1000;
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
/** The longest the tracker waits for the sender to take kept content before reading on. */
const ROOM_WAIT_MS = 50;

/** What one batch journals, held by kind until they go to the journal in order. */
class BatchRows {
  ops: JournalOp[] = [];
  /** Manifest rows moved by renames, in order: written first, in the batch's transaction. */
  moves: (FileRecord | string)[] = [];
  puts: FileRecord[] = [];
  dels: string[] = [];
  deletes: JournalOp[] = [];
  mkdirs: JournalOp[] = [];
  links: JournalOp[] = [];
  writes: JournalOp[] = [];
  metas: JournalOp[] = [];

  clear(): void {
    this.ops = [];
    this.moves = [];
    this.puts = [];
    this.dels = [];
    this.deletes = [];
    this.mkdirs = [];
    this.links = [];
    this.writes = [];
    this.metas = [];
  }
}

function depth(rel: string): number {
  let d = 0;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) d++;
  return d;
}

/** What the manifest knows of a path and what an lstat finds there agree: it is unchanged. */
function statsMatch(old: FileRecord | undefined, entry: DiskEntry): boolean {
  return old !== undefined && sameVersion(old, entry) && old.mode === entry.mode;
}

/** The batch, parents before children (stable within a depth); each depth counted once. */
function byDepth(batch: [string, boolean][]): [string, boolean][] {
  const keyed = batch.map((b) => ({ b, d: depth(b[0]) }));
  keyed.sort((x, y) => x.d - y.d);
  return keyed.map((k) => k.b);
}

export class ChangeTracker extends EventEmitter<ChangeTrackerEvents> {
  readonly manifest: Map<string, FileRecord>;
  /** What small files just read hold, for their first send (see RecentContent). */
  readonly recent = new RecentContent(RECENT_BYTES);
  readonly #root: string;
  /** The root with one trailing slash: a relative path appended makes its absolute path. */
  readonly #rootSlash: string;
  readonly #store: Store;
  readonly #skip: (rel: string, isDir: boolean) => boolean;
  #epoch: () => Epoch;
  #dirty = new Map<string, boolean>();
  /** What a scan's lstat just found for a path it marked: the batch need not lstat it again. */
  #scanned = new Map<string, DiskEntry>();
  #running = false;
  #closed = false;
  #seq: number;
  #idleWaiters: (() => void)[] = [];
  /** When each file's last read began (not persisted: after a restart, files are read again). */
  #readAt = new Map<string, number>();
  /** Paths seen gone once, waiting for a second look (see #holdBack). */
  #held = new Set<string>();
  /** Second looks scheduled and not yet due. */
  #lookLater = 0;
  /** Large files whose second read for a late watcher event is scheduled (see RECHECK_LATER_MS). */
  #recheckDue = new Set<string>();
  /** When the watcher began covering every folder (told by the first scan; never, until then). */
  #watchedSince = Number.NEGATIVE_INFINITY;
  /** The manifest by inode, kept in step with it: rename pairing looks up vanished paths here. */
  #byIno = new Map<number, FileRecord>();

  constructor(
    root: string,
    store: Store,
    skip: (rel: string, isDir: boolean) => boolean,
    epoch: () => Epoch,
  ) {
    super();
    this.#root = resolve(root);
    this.#rootSlash = this.#root === '/' ? '/' : `${this.#root}/`;
    this.#store = store;
    this.#skip = skip;
    this.#epoch = epoch;
    this.manifest = store.loadFiles();
    for (const rec of this.manifest.values()) this.#byIno.set(rec.ino, rec);
    this.#seq = store.lastSeq();
  }

  /** Where `rel` (a normalized relative path, as the manifest keeps them) is on disk. */
  #abs(rel: string): string {
    return this.#rootSlash + rel;
  }

  /** A batch is being read and journaled (or paths wait for one). */
  get busy(): boolean {
    return this.#running;
  }

  get lastSeq(): number {
    return this.#seq;
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
    if (!this.#running) {
      this.#running = true;
      setImmediate(() => void this.#run());
    }
  }

  /**
   * Walks the whole tree and marks whatever differs from the manifest, and what vanished.
   * `watchedSince`: when the watcher began covering every folder. A file read after that needs
   * no new look (any later change has an event of its own): the scan that follows the watcher's
   * start skips their lstat. Periodic rescans, there for missed events, pass nothing.
   */
  async scan(watchedSince?: number): Promise<void> {
    if (watchedSince !== undefined) this.#watchedSince = watchedSince;
    const seen = new Set<string>();
    const first = this.manifest.size === 0;
    const noStat = first
      ? () => true
      : watchedSince === undefined
        ? undefined
        : (rel: string) => (this.#readAt.get(rel) ?? 0) > watchedSince && this.manifest.has(rel);
    for await (const found of walkFolders(this.#root, this.#skip, noStat)) {
      for (const { rel, entry } of found) {
        seen.add(rel);
        if (!entry) {
          if (first) this.mark(rel, false, UNSTATED);
          continue;
        }
        if (!statsMatch(this.manifest.get(rel), entry)) this.mark(rel, false, entry);
      }
    }
    for (const rel of this.manifest.keys()) if (!seen.has(rel)) this.mark(rel, false);
    await this.idle();
  }

  /** Resolves once no batch is running and nothing is marked. */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Resolves once nothing is running, marked, or waiting for a second look (see #later). */
  async settled(): Promise<void> {
    while (this.#running || this.#lookLater > 0) {
      await (this.#running ? this.idle() : new Promise((r) => setTimeout(r, 5)));
    }
  }

  /** Looks at `rel` again after `ms`; `settled()` waits for it. */
  #later(rel: string, forced: boolean, ms: number): void {
    this.#after(ms, () => this.mark(rel, forced));
  }

  /** Runs `look` after `ms`; `settled()` waits for it. */
  #after(ms: number, look: () => void): void {
    this.#lookLater++;
    setTimeout(() => {
      this.#lookLater--;
      look();
    }, ms).unref();
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
      }
    } catch (err) {
      this.emit('error', err as Error);
    } finally {
      this.#running = false;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
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
      if (entry && !this.#inRealFolders(rel, folders)) entry = null;
      // Folder-only patterns (`build/`) can only be checked once the path is known to be a folder.
      if (entry?.kind === 'dir' && this.#skip(rel, true)) entry = null;
      if (!entry) {
        this.#recheckDue.delete(rel);
        if (old) gone.push(old);
      } else {
        present.push({ rel, entry, old, forced });
      }
    }
    const rows = new BatchRows();
    await this.#renames(gone, present, rows);
    for (const g of this.#holdBack(gone)) {
      rows.deletes.push({ kind: 'delete', path: g.path });
      this.#dropTree(g.path, rows.dels);
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
      this.#dropTree(rel, rows.dels);
      old = undefined;
    }
    if (entry.kind === 'file') return this.#lookFile(p, old, rows);
    const base: FileRecord = {
      path: rel,
      kind: entry.kind,
      size: entry.size,
      mtimeMs: entry.mtimeMs,
      mode: entry.mode,
      ino: entry.ino,
      ctimeMs: entry.ctimeMs,
    };
    if (entry.kind === 'dir') {
      if (!old) {
        rows.mkdirs.push({ kind: 'mkdir', path: rel, mode: entry.mode, mtimeMs: entry.mtimeMs });
        // Whatever was made inside before the watcher watched the new folder (mkdir -p a/b/c
        // and a file in it, at once) is found here rather than at the next rescan. Listed
        // twice: the writer may still be making or writing what goes in it as it is listed
        // now, so the second listing looks at every entry again (an lstat each; a file is read
        // again only if it changed). A folder untouched since before the watcher started needs
        // neither: the scan lists it, and its watch reports the rest.
        if (entry.ctimeMs >= this.#watchedSince - WATCHED_BEFORE_SLACK_MS) {
          this.#markNew(rel);
          this.#after(NEW_FOLDER_RELOOK_MS, () => this.#markNew(rel, true));
        }
      } else if (old.mode !== entry.mode || old.mtimeMs !== entry.mtimeMs)
        rows.metas.push({ kind: 'meta', path: rel, mode: entry.mode, mtimeMs: entry.mtimeMs });
      rows.puts.push(base);
    } else {
      const target = await readLinkTarget(this.#abs(rel));
      if (target === null || target === '') return;
      if (!old || old.target !== target)
        rows.links.push({ kind: 'symlink', path: rel, target, mtimeMs: entry.mtimeMs });
      rows.puts.push({ ...base, target });
    }
  }

  /** `#look` for a regular file: reads it unless its stat shows it unchanged. */
  async #lookFile(p: Present, old: FileRecord | undefined, rows: BatchRows): Promise<void> {
    const { rel } = p;
    let readStartMs = Date.now();
    let fd: number | null = null;
    let entry = p.entry;
    if (entry === UNSTATED) {
      fd = openToRead(this.#abs(rel));
      const found = fd === null ? null : entryOf(fstatSync(fd));
      if (found?.kind !== 'file') {
        // Gone, or no longer a regular file: looked at again, through an lstat.
        if (fd !== null) closeSync(fd);
        this.#later(rel, true, RETRY_UNSTABLE_MS);
        return;
      }
      entry = found; // and `old` is undefined (see #process): nothing below returns before the read
    }
    const unchanged = statsMatch(old, entry);
    if (unchanged && !p.forced) return;
    if (unchanged) {
      // A watcher event can trail the read that already saw its write. If the file is
      // unchanged since and that read began well after the file's last change, skip it.
      const readAt = this.#readAt.get(rel);
      if (readAt !== undefined && readAt > entry.ctimeMs + CTIME_SLACK_MS) return;
      // Otherwise a write in the same clock tick as the last change could hide behind equal
      // stats, so the file is read again. For a large file that read waits a little: right
      // now it would compete with sending the version just read.
      if (entry.size >= RECHECK_LATER_BYTES && !this.#recheckDue.delete(rel)) {
        this.#recheckDue.add(rel);
        this.#later(rel, true, RECHECK_LATER_MS);
        return;
      }
    }
    // Content kept for the sender fills up while the sender waits for the batch's rows:
    // journal what was read so far, and give the sender time to take it. (With no sender
    // taking any, the batch goes on unjournaled: a commit per file would be all it gained.)
    if (entry.size <= PART_BYTES && this.recent.full(entry.size)) {
      if (rows.writes.length > 0) this.#commitRows(rows);
      await this.recent.room(entry.size, ROOM_WAIT_MS);
    }
    // Read into a buffer of its own only when it will be kept for the sender.
    const keep = entry.size <= PART_BYTES && this.recent.fits(entry.size) ? PART_BYTES : 0;
    if (fd === null) {
      readStartMs = Date.now();
      fd = openToRead(this.#abs(rel));
    }
    const version = fd === null ? null : await readOpenedVersion(fd, readStartMs, keep, entry);
    if (!version) {
      // Changing under us, or gone: look again shortly.
      this.#later(rel, true, RETRY_UNSTABLE_MS);
      return;
    }
    this.#readAt.set(rel, version.readStartMs);
    const v = version.entry;
    const rec: FileRecord = {
      path: rel,
      kind: 'file',
      size: v.size,
      mtimeMs: v.mtimeMs,
      mode: v.mode,
      ino: v.ino,
      ctimeMs: v.ctimeMs,
      hash: version.hash,
    };
    rows.puts.push(rec);
    if (old?.hash === version.hash && !p.renamed) {
      if (old.mode !== v.mode || old.mtimeMs !== v.mtimeMs)
        rows.metas.push({ kind: 'meta', path: rel, mode: v.mode, mtimeMs: v.mtimeMs });
      return;
    }
    // Same content under a new name: a write of the old name may still be on its way to a
    // mirror, or have been voided (the rename made it look torn). This row lets the sender
    // check what the mirror holds under the new name; usually it leaves as metadata only.
    const write: JournalOp = {
      kind: 'write',
      path: rel,
      mode: v.mode,
      mtimeMs: v.mtimeMs,
      size: v.size,
      hash: version.hash,
    };
    if (old?.hash && old.hash !== version.hash) write.prevHash = old.hash;
    rows.writes.push(write);
    // Content is kept only for a write row: the sender takes (or drops) it at the row.
    if (version.content) this.recent.put(rel, version.hash, version.content);
  }

  /**
   * Journals what the batch has found so far; the rest of it follows in later rows. Ops keep
   * their order (deletes, folders, links, writes, metadata) within each commit, and the batch
   * is in depth order, so a folder's mkdir never trails a write into it.
   */
  #commitRows(rows: BatchRows): void {
    const ops = rows.ops;
    ops.push(...rows.deletes, ...rows.mkdirs, ...rows.links, ...rows.writes, ...rows.metas);
    this.#commit(ops, rows.moves, rows.puts, rows.dels);
    rows.clear();
  }

  /**
   * Pairs new paths with vanished ones of the same inode: those are renames, not new data.
   * The old path may have vanished in this batch or not yet been noticed at all (watchers
   * report the two halves of a rename separately); either way it must be gone from disk.
   */
  async #renames(gone: FileRecord[], present: Present[], rows: BatchRows): Promise<void> {
    const goneByIno = new Map<number, FileRecord>();
    for (const g of gone) goneByIno.set(g.ino, g);
    for (const p of present) {
      if (p.entry === UNSTATED || (p.old && p.old.ino === p.entry.ino)) continue;
      let g = goneByIno.get(p.entry.ino);
      if (!g) {
        const cand = this.#byIno.get(p.entry.ino);
        if (!cand || cand.path === p.rel || this.manifest.get(cand.path) !== cand) continue;
        const there = await statEntry(this.#abs(cand.path));
        if (there && there.ino === cand.ino) continue; // a hard link, not a rename
        g = cand;
      }
      if (g.kind !== p.entry.kind || (g.kind === 'file' && g.size !== p.entry.size)) continue;
      if (goneByIno.get(g.ino) === g) {
        goneByIno.delete(g.ino);
        gone.splice(gone.indexOf(g), 1);
      }
      rows.ops.push({ kind: 'rename', from: g.path, to: p.rel });
      p.renamed = true;
      this.#moveTree(g.path, p.rel, rows.moves);
      crashPoint('rename-before-journal');
      p.old = this.manifest.get(p.rel);
    }
  }

  /**
   * Watchers report a rename's two halves separately, often the vanished path first. A path
   * seen gone for the first time is looked at again after HOLD_GONE_MS, so that its new name
   * can claim it as a rename; only then is it a delete.
   */
  #holdBack(gone: FileRecord[]): FileRecord[] {
    const now: FileRecord[] = [];
    for (const g of gone) {
      if (this.#held.delete(g.path)) {
        now.push(g);
      } else {
        this.#held.add(g.path);
        this.#later(g.path, false, HOLD_GONE_MS);
        this.#lookAround(g.path);
      }
    }
    return now;
  }

  /** Paths at and below `path` in the manifest: only a folder needs a scan for its contents. */
  #subtree(path: string): string[] {
    const rec = this.manifest.get(path);
    if (rec && rec.kind !== 'dir') return [path];
    const prefix = `${path}/`;
    const out: string[] = [];
    for (const rel of this.manifest.keys()) if (rel === path || rel.startsWith(prefix)) out.push(rel);
    return out;
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

  /** Moves a subtree in the manifest now; its rows go to `moves`, for the batch's transaction. */
  #moveTree(from: string, to: string, moves: (FileRecord | string)[]): void {
    for (const rel of this.#subtree(from)) {
      const rec = this.manifest.get(rel)!;
      const moved = to + rel.slice(from.length);
      this.#forget(rel);
      moves.push(rel);
      const next = { ...rec, path: moved };
      this.#remember(next);
      moves.push(next);
    }
  }

  /**
   * True when every folder above `rel` is a real folder on disk now (no link, no file), each
   * looked up once per batch in `known`. A primary never reads through a link in its root: a
   * folder replaced by a link to /etc is that link, not the files it points to.
   */
  #inRealFolders(rel: string, known: Map<string, boolean>): boolean {
    const slash = rel.lastIndexOf('/');
    if (slash < 0) return true;
    const parent = rel.slice(0, slash);
    let ok = known.get(parent);
    if (ok === undefined) {
      ok =
        this.#inRealFolders(parent, known) &&
        lstatSync(this.#abs(parent), { throwIfNoEntry: false })?.isDirectory() === true;
      known.set(parent, ok);
    }
    return ok;
  }

  #dropTree(path: string, dels: string[]): void {
    for (const rel of this.#subtree(path)) {
      dels.push(rel);
      this.#forget(rel);
    }
  }

  #remember(rec: FileRecord): void {
    const prev = this.manifest.get(rec.path);
    if (prev && this.#byIno.get(prev.ino) === prev) this.#byIno.delete(prev.ino);
    this.manifest.set(rec.path, rec);
    this.#byIno.set(rec.ino, rec);
  }

  #forget(rel: string): void {
    const rec = this.manifest.get(rel);
    if (!rec) return;
    this.recent.delete(rel);
    this.manifest.delete(rel);
    if (this.#byIno.get(rec.ino) === rec) this.#byIno.delete(rec.ino);
  }

  #commit(ops: JournalOp[], moves: (FileRecord | string)[], puts: FileRecord[], dels: string[]): void {
    const epoch = this.#epoch();
    this.#store.tx(() => {
      for (const m of moves) {
        if (typeof m === 'string') this.#store.deleteFile(m);
        else this.#store.putFile(m);
      }
      for (const rel of dels) this.#store.deleteFile(rel);
      for (const rec of puts) this.#store.putFile(rec);
      for (const op of ops) this.#store.append(++this.#seq, epoch, op);
    });
    for (const rec of puts) this.#remember(rec);
    if (ops.length > 0) this.emit('appended', this.#seq);
  }
}
