/*
 * node/: what every node has, whatever its role. The Store (this file) is the node's SQLite
 * database: its typed state (node id, epoch, role, fork point, applied sequence, fenced-by,
 * folder id) behind methods, the manifest of the tree and, on a primary, the journal; no other
 * file holds SQL or meta keys. Beside it: local-fs (stat and walk), confine (path safety),
 * fs-sync (syncfs), folder-marker, excludes, log, control-socket, options and the error table.
 * Nothing here imports link/, primary/ or mirror/ (Biome's noRestrictedImports checks it).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Epoch } from '@mimic/wire';
import type Database from 'better-sqlite3';
import { Manifest, type ManifestOptions } from './manifest.js';
import { requireCjs } from './require-cjs.js';
import {
  createSchema,
  type FencedBy,
  type FileRecord,
  type ForkPoint,
  fileParams,
  type JournalOp,
  type JournalRow,
  type MetaKey,
  type NodeRole,
  PUT_FILE,
  RAW_FILE_COLUMNS,
  rawRecord,
} from './store-schema.js';

/** The term a node serves in when it first becomes a primary. */
export const FIRST_TERM = 1;

export type { Manifest } from './manifest.js';
export type { FencedBy, FileRecord, ForkPoint, JournalOp, JournalRow, NodeRole } from './store-schema.js';

const SqliteDatabase: typeof Database = requireCjs('better-sqlite3');

/** Lagging writes wait at most this long, and for at most this many signatures or bytes. */
const LAZY_DELAY_MS = 200;
const LAZY_MAX_SIGS = 512;
const LAZY_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Journal rows kept as appended, for senders that read right behind the writer (an initial
 * sync reads back every row it journals); older rows are read from the database.
 */
const TAIL_ROWS = 8192;

/**
 * The durable state of a node, in one SQLite database (WAL): meta values, the manifest of
 * every replicated path, the journal of operations, cached block signatures and peers' acks.
 */
export class Store {
  readonly #db: Database.Database;
  readonly #putFile: Database.Statement;
  readonly #delFile: Database.Statement;
  readonly #append: Database.Statement;
  readonly #readFrom: Database.Statement;
  /** Every other statement, prepared once on first use (preparing costs more than running). */
  readonly #prepared = new Map<string, Database.Statement>();
  /**
   * Writes that may lag (cached signatures, peers' acks) wait here and go in one transaction:
   * one each would cost a commit per file sent or per ack received.
   */
  readonly #lazySigs = new Map<string, Uint8Array>();
  #lazySigBytes = 0;
  readonly #lazyAcks = new Map<string, number>();
  #lazyTimer: NodeJS.Timeout | null = null;
  /** The newest journal rows, consecutive; rows of a transaction join at its commit. */
  #tail: JournalRow[] = [];
  #uncommitted: JournalRow[] = [];

  constructor(path: string) {
    this.#db = new SqliteDatabase(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    createSchema(this.#db);
    this.#putFile = this.#db.prepare(PUT_FILE);
    this.#delFile = this.#db.prepare('DELETE FROM files WHERE path = ?');
    this.#append = this.#db.prepare('INSERT INTO journal (seq, term, node, op) VALUES (?, ?, ?, ?)');
    this.#readFrom = this.#db.prepare(
      'SELECT seq, term, node, op FROM journal WHERE seq >= ? ORDER BY seq LIMIT ?',
    );
  }

  #q(sql: string): Database.Statement {
    let st = this.#prepared.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      this.#prepared.set(sql, st);
    }
    return st;
  }

  close(): void {
    this.flushLazy();
    this.#db.close();
  }

  /** Writes out the lagging writes now. */
  flushLazy(): void {
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = null;
    if (this.#lazySigs.size === 0 && this.#lazyAcks.size === 0) return;
    this.tx(() => {
      const sig = this.#q('INSERT OR IGNORE INTO sigs (hash, sig) VALUES (?, ?)');
      for (const [hash, bytes] of this.#lazySigs) sig.run(hash, bytes);
      const ack = this.#q('INSERT OR REPLACE INTO peers (id, acked_seq) VALUES (?, ?)');
      for (const [id, seq] of this.#lazyAcks) ack.run(id, seq);
    });
    this.#lazySigs.clear();
    this.#lazySigBytes = 0;
    this.#lazyAcks.clear();
  }

  #lazyWrite(): void {
    if (this.#lazySigs.size >= LAZY_MAX_SIGS || this.#lazySigBytes >= LAZY_MAX_BYTES) this.flushLazy();
    else if (!this.#lazyTimer) {
      this.#lazyTimer = setTimeout(() => this.flushLazy(), LAZY_DELAY_MS);
      this.#lazyTimer.unref();
    }
  }

  /** The database file's path. */
  get path(): string {
    return this.#db.name;
  }

  get inTransaction(): boolean {
    return this.#db.inTransaction;
  }

  #getMeta(key: MetaKey): string | undefined {
    return (this.#q('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  #setMeta(key: MetaKey, value: string | number): void {
    this.#q('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, String(value));
  }

  #deleteMeta(key: MetaKey): void {
    this.#q('DELETE FROM meta WHERE key = ?').run(key);
  }

  /** This node's id: made once (host name plus a random suffix), then kept. */
  nodeId(): string {
    let id = this.#getMeta('nodeId');
    if (!id) {
      const host =
        hostname()
          .replace(/[^A-Za-z0-9._-]/g, '-')
          .slice(0, 40) || 'node';
      id = `${host}-${randomBytes(4).toString('hex')}`;
      this.#setMeta('nodeId', id);
    }
    return id;
  }

  /**
   * The epoch this node is in. A node that was never in one is in term 0 of its own: older than
   * any primary's, so as a mirror it follows the first it meets, and as a primary it serves
   * `FIRST_TERM` (see `serveEpoch`).
   */
  epoch(): Epoch {
    return {
      term: Number(this.#getMeta('epochTerm') ?? 0),
      node: this.#getMeta('epochNode') ?? this.nodeId(),
    };
  }

  /** The epoch this node serves in as a primary: its own, or the first term if it had none. */
  serveEpoch(): Epoch {
    const stored = this.epoch();
    const epoch = stored.term === 0 ? { term: FIRST_TERM, node: stored.node } : stored;
    this.setEpoch(epoch);
    return epoch;
  }

  setEpoch(epoch: Epoch): void {
    this.tx(() => {
      this.#setMeta('epochTerm', epoch.term);
      this.#setMeta('epochNode', epoch.node);
    });
  }

  role(): NodeRole | null {
    return (this.#getMeta('role') as NodeRole | undefined) ?? null;
  }

  /** Records the role; any role but `fenced` forgets who fenced this node. */
  setRole(role: Exclude<NodeRole, 'fenced'>): void {
    this.tx(() => {
      this.#setMeta('role', role);
      this.#deleteMeta('fencedBy');
    });
  }

  /** Who fenced this node, while its role is `fenced`. */
  fencedBy(): FencedBy | null {
    const by = this.#getMeta('fencedBy');
    return this.role() === 'fenced' && by ? (JSON.parse(by) as FencedBy) : null;
  }

  fence(by: FencedBy): void {
    this.tx(() => {
      this.#setMeta('role', 'fenced');
      this.#setMeta('fencedBy', JSON.stringify(by));
    });
  }

  /** The last sequence a mirror recorded as applied (null: never recorded). */
  appliedSeq(): number | null {
    const v = this.#getMeta('appliedSeq');
    return v === undefined ? null : Number(v);
  }

  /** Records the applied sequence: everything applied before it is now recorded too. */
  setAppliedSeq(seq: number): void {
    this.tx(() => {
      this.#setMeta('appliedSeq', seq);
      this.#deleteMeta('unrecorded');
    });
  }

  /**
   * Notes, before a mirror changes its tree beyond the recorded sequence, that it has: a stop
   * before the next `setAppliedSeq` leaves changes a replay could not tell from new ones.
   */
  markUnrecorded(): void {
    this.#setMeta('unrecorded', 1);
  }

  /** True when the last run stopped with tree changes past its recorded sequence. */
  unrecorded = (): boolean => this.#getMeta('unrecorded') !== undefined;

  /** Where this node's epoch forked from the one before, if it was promoted. */
  fork(): ForkPoint | undefined {
    const term = this.#getMeta('forkTerm');
    const node = this.#getMeta('forkNode');
    const seq = this.#getMeta('forkSeq');
    return term && node && seq ? { epoch: { term: Number(term), node }, seq: Number(seq) } : undefined;
  }

  /**
   * Records a mirror's promotion, durably and in one transaction: what it applied, where it
   * forked from `from`, its new epoch `to`, and that it now serves as a primary.
   */
  recordPromotion(appliedSeq: number, from: Epoch, to: Epoch): void {
    this.tx(() => {
      this.#setMeta('appliedSeq', appliedSeq);
      this.#setMeta('forkTerm', from.term);
      this.#setMeta('forkNode', from.node);
      this.#setMeta('forkSeq', appliedSeq);
      this.#setMeta('journalBase', Math.max(appliedSeq, this.lastSeq()));
      this.setEpoch(to);
      this.setRole('primary');
      this.#deleteMeta('unrecorded');
    });
    this.#db.pragma('wal_checkpoint(FULL)');
  }

  /** The identity of the folder this node serves or holds (see folder-marker.ts). */
  folderId(): string | null {
    return this.#getMeta('folderId') ?? null;
  }

  setFolderId(id: string): void {
    this.#setMeta('folderId', id);
  }

  /** Runs `fn` in one transaction. */
  tx<T>(fn: () => T): T {
    if (this.#db.inTransaction) return fn();
    this.#q('BEGIN').run();
    try {
      const result = fn();
      this.#q('COMMIT').run();
      this.#keepTail();
      return result;
    } catch (err) {
      this.#uncommitted = [];
      if (this.#db.inTransaction) this.#q('ROLLBACK').run();
      throw err;
    }
  }

  /** The manifest, read row by row (a million rows as one array would double the peak). */
  loadFiles(options: ManifestOptions = {}): Manifest {
    const manifest = new Manifest([], options);
    const rows = this.#q(`SELECT ${RAW_FILE_COLUMNS} FROM files`).raw(true).iterate();
    for (const r of rows as IterableIterator<unknown[]>) manifest.adopt(r[0] as string, rawRecord(r));
    return manifest;
  }

  putFile(rec: FileRecord): void {
    this.#putFile.run(fileParams(rec));
  }

  deleteFile(path: string): void {
    this.#delFile.run(path);
  }

  /** Deletes `path` and everything below it from the manifest. */
  deleteTree(path: string): void {
    // '0' follows '/': the range holds exactly the paths below `path/`, found through the key.
    this.#q('DELETE FROM files WHERE path = ? OR (path > ? AND path < ?)').run(path, `${path}/`, `${path}0`);
  }

  lastSeq(): number {
    const row = this.#q('SELECT MAX(seq) AS s FROM journal').get() as { s: number | null };
    return row.s ?? Number(this.#getMeta('journalBase') ?? 0);
  }

  /** Lowest sequence number still in the journal (lastSeq + 1 when it is empty). */
  firstSeq(): number {
    const row = this.#q('SELECT MIN(seq) AS s FROM journal').get() as { s: number | null };
    return row.s ?? this.lastSeq() + 1;
  }

  append(seq: number, epoch: Epoch, op: JournalOp): void {
    this.#append.run(seq, epoch.term, epoch.node, JSON.stringify(op));
    this.#uncommitted.push({ seq, epoch, op });
    if (!this.#db.inTransaction) this.#keepTail();
  }

  #keepTail(): void {
    const rows = this.#uncommitted;
    if (rows.length === 0) return;
    this.#uncommitted = [];
    const last = this.#tail.at(-1);
    if (last && rows[0]!.seq !== last.seq + 1) this.#tail = [];
    for (const r of rows) this.#tail.push(r);
    if (this.#tail.length > TAIL_ROWS) this.#tail = this.#tail.slice(-TAIL_ROWS / 2);
  }

  /** Up to `limit` journal rows from `fromSeq` on, in order. Callers must not change them. */
  readJournal(fromSeq: number, limit: number): JournalRow[] {
    const tail = this.#tail;
    const first = tail[0]?.seq ?? Number.POSITIVE_INFINITY;
    if (fromSeq >= first && fromSeq <= first + tail.length - 1)
      return tail.slice(fromSeq - first, fromSeq - first + limit);
    const rows = this.#readFrom.all(fromSeq, limit) as {
      seq: number;
      term: number;
      node: string;
      op: string;
    }[];
    return rows.map((r) => ({
      seq: r.seq,
      epoch: { term: r.term, node: r.node },
      op: JSON.parse(r.op) as JournalOp,
    }));
  }

  /** Drops journal rows below `seq`, remembering where the journal now starts. */
  pruneJournal(belowSeq: number): void {
    this.tx(() => {
      const last = this.lastSeq();
      this.#q('DELETE FROM journal WHERE seq < ?').run(belowSeq);
      this.#tail = this.#tail.filter((r) => r.seq >= belowSeq);
      this.#setMeta('journalBase', Math.min(last, belowSeq - 1));
    });
  }

  /** Keeps a block signature (written with the next batch of lagging writes). */
  putSignature(hash: string, sig: Uint8Array): void {
    if (this.#lazySigs.has(hash)) return;
    this.#lazySigs.set(hash, sig);
    this.#lazySigBytes += sig.length;
    this.#lazyWrite();
  }

  getSignature(hash: string): Uint8Array | undefined {
    const lazy = this.#lazySigs.get(hash);
    if (lazy) return lazy;
    const row = this.#q('SELECT sig FROM sigs WHERE hash = ?').get(hash) as { sig: Uint8Array } | undefined;
    return row?.sig;
  }

  /** Drops cached signatures that neither the manifest nor the journal refers to any more. */
  pruneSignatures(): void {
    this.flushLazy();
    this.#db.exec(`DELETE FROM sigs WHERE hash NOT IN (SELECT hash FROM files WHERE hash IS NOT NULL)
      AND hash NOT IN (SELECT json_extract(op, '$.prevHash') FROM journal WHERE json_extract(op, '$.prevHash') IS NOT NULL)`);
  }

  /** Records how far a peer has acknowledged (written with the next batch of lagging writes). */
  setPeerAck(id: string, seq: number): void {
    this.#lazyAcks.set(id, seq);
    this.#lazyWrite();
  }

  peerAcks(): Map<string, number> {
    this.flushLazy();
    const rows = this.#q('SELECT id, acked_seq FROM peers').all() as {
      id: string;
      acked_seq: number;
    }[];
    return new Map(rows.map((r) => [r.id, r.acked_seq]));
  }
}
