import type { Epoch } from '@mimic/wire';
import { attrsOf, type DiskEntry, sameMeta, sameVersion } from '../node/local-fs.js';
import { depth } from '../node/paths.js';
import type { FileRecord, JournalOp, Store } from '../node/store.js';

/** A marked path found on disk by a batch, with what the manifest knew of it. */
export interface Present {
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
export const UNSTATED: DiskEntry = Object.freeze({
  kind: 'file',
  size: -1,
  mtimeMs: 0,
  mtimeNs: 0,
  mode: 0,
  uid: -1,
  gid: -1,
  ino: -1,
  dev: -1,
  nlink: 0,
  ctimeMs: 0,
});

/** What the manifest knows of a path and what an lstat finds there agree: it is unchanged. */
export function statsMatch(old: FileRecord | undefined, entry: DiskEntry): boolean {
  return old !== undefined && sameVersion(old, entry) && sameMeta(old, entry);
}

/** The meta row for `rel` as an lstat found it: mode, mtime (ns too) and owner; xattrs go at send time. */
/** When the content of a record a batch puts was read (kept in memory only), by record. */
const readTimes = new WeakMap<FileRecord, number>();
export const stampRead = (rec: FileRecord, ms: number): void => void readTimes.set(rec, ms);
export const readAtOf = (rec: FileRecord): number | undefined => readTimes.get(rec);

export const metaRow = (rel: string, e: DiskEntry): JournalOp => ({
  kind: 'meta',
  path: rel,
  mode: e.mode,
  mtimeMs: e.mtimeMs,
  ...attrsOf(e),
});

/** The batch, parents before children (stable within a depth); each depth counted once. */
export function byDepth(batch: [string, boolean][]): [string, boolean][] {
  const keyed = batch.map((b) => ({ b, d: depth(b[0]) }));
  keyed.sort((x, y) => x.d - y.d);
  return keyed.map((k) => k.b);
}

/** What one commit writes: journal ops in order, and the manifest rows that go with them. */
export interface Commit {
  ops: JournalOp[];
  moves: (FileRecord | string)[];
  puts: FileRecord[];
  dels: string[];
}

/** What one batch journals, held by kind until they go to the journal in order. */
export class BatchRows {
  /** Renames, found first: they lead every commit's ops. */
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

  /**
   * What the batch has found so far, ops in their order (renames, deletes, folders, links,
   * writes, metadata), leaving the rows empty for the rest of the batch.
   */
  take(): Commit {
    const ops = this.ops;
    ops.push(...this.deletes, ...this.mkdirs, ...this.links, ...this.writes, ...this.metas);
    const taken = { ops, moves: this.moves, puts: this.puts, dels: this.dels };
    this.clear();
    return taken;
  }

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

/** Appends commits to the store's journal, numbering their ops. */
export class BatchJournal {
  readonly #store: Store;
  readonly #epoch: () => Epoch;
  #seq: number;

  constructor(store: Store, epoch: () => Epoch) {
    this.#store = store;
    this.#epoch = epoch;
    this.#seq = store.lastSeq();
  }

  get lastSeq(): number {
    return this.#seq;
  }

  /**
   * Writes a commit in one transaction: renames' manifest moves first, then deleted and put
   * rows, then the journal ops, so a crash never leaves a manifest that shows a change the
   * journal lacks.
   */
  write(c: Commit): void {
    const epoch = this.#epoch();
    const store = this.#store;
    store.tx(() => {
      for (const m of c.moves) {
        if (typeof m === 'string') store.deleteFile(m);
        else store.putFile(m);
      }
      for (const rel of c.dels) store.deleteFile(rel);
      for (const rec of c.puts) store.putFile(rec);
      for (const op of c.ops) store.append(++this.#seq, epoch, op);
    });
  }
}
