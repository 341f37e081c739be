/*
 * The Store's records and schema: the types its methods take and return, the tables of the
 * node's database, and the conversion of a manifest row to a record. Only store.ts reads them.
 */
import type { Epoch, ManifestEntry, Op } from '@mimic/wire';
import type Database from 'better-sqlite3';

/** What the manifest knows of one path: the wire entry plus the local identity used to spot changes. */
export interface FileRecord extends ManifestEntry {
  ino: number;
  ctimeMs: number;
}

/** No epoch yet: before a node reads its store, or a mirror meets its primary. Older than any. */
export const NO_EPOCH: Epoch = Object.freeze({ term: 0, node: '' });

/** What a node last served as: a primary, a mirror, or a primary fenced by a newer epoch. */
export type NodeRole = 'primary' | 'mirror' | 'fenced';

/** The newer primary that fenced this one, as far as it is known. */
export interface FencedBy {
  url: string | null;
  epoch: Epoch;
}

/** Where a promoted node's epoch began: the epoch it forked from and the last seq it held of it. */
export interface ForkPoint {
  epoch: Epoch;
  seq: number;
}

/** The meta keys of the node state; nothing outside this file names them. */
export type MetaKey =
  | 'nodeId'
  | 'epochTerm'
  | 'epochNode'
  | 'role'
  | 'fencedBy'
  | 'appliedSeq'
  | 'forkTerm'
  | 'forkNode'
  | 'forkSeq'
  | 'journalBase'
  | 'folderId'
  | 'unrecorded';

/** One journal row: an operation stamped with its sequence number and epoch. */
export interface JournalRow {
  seq: number;
  epoch: Epoch;
  op: JournalOp;
}

/** Journal operations: a write carries no bytes (they are read at send time), but the hash it had. */
export type JournalOp =
  | Exclude<Op, { kind: 'write' }>
  | {
      kind: 'write';
      path: string;
      mode: number;
      mtimeMs: number;
      uid?: number;
      gid?: number;
      size: number;
      hash: string;
      prevHash?: string;
    };

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL, mtime_ms REAL NOT NULL,
  mode INTEGER NOT NULL, hash TEXT, target TEXT, ino INTEGER NOT NULL, ctime_ms REAL NOT NULL,
  uid INTEGER, gid INTEGER, mtime_ns INTEGER, xattrs BLOB, link TEXT);
CREATE TABLE IF NOT EXISTS journal (
  seq INTEGER PRIMARY KEY, term INTEGER NOT NULL, node TEXT NOT NULL, op TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sigs (hash TEXT PRIMARY KEY, sig BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS peers (id TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL);
`;

export interface FileRow {
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  size: number;
  mtime_ms: number;
  mode: number;
  hash: string | null;
  target: string | null;
  ino: number;
  ctime_ms: number;
  uid: number | null;
  gid: number | null;
  mtime_ns: number | null;
  xattrs: Uint8Array | null;
  link: string | null;
}

/** Columns added since the first schema, for a store made before them (ALTER TABLE ADD COLUMN). */
const ADDED_COLUMNS: readonly (readonly [table: string, column: string, type: string])[] = [
  ['files', 'uid', 'INTEGER'],
  ['files', 'gid', 'INTEGER'],
  ['files', 'mtime_ns', 'INTEGER'],
  ['files', 'xattrs', 'BLOB'],
  ['files', 'link', 'TEXT'],
];

/** Makes the tables of a new store, and brings one made by an older version up to SCHEMA. */
export function createSchema(db: Database.Database): void {
  db.exec(SCHEMA);
  for (const [table, column, type] of ADDED_COLUMNS) {
    const have = db.pragma(`table_info(${table})`) as { name: string }[];
    if (!have.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
  }
}

export const PUT_FILE = `INSERT OR REPLACE INTO files
  (path, kind, size, mtime_ms, mode, hash, target, ino, ctime_ms, uid, gid, mtime_ns, xattrs, link)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** A record as PUT_FILE's parameters: by position, as binding by name looks up every field on each run. */
export function fileParams(r: FileRecord): unknown[] {
  return [
    r.path,
    r.kind,
    r.size,
    r.mtimeMs,
    r.mode,
    r.hash ?? null,
    r.target ?? null,
    r.ino,
    r.ctimeMs,
    r.uid ?? null,
    r.gid ?? null,
    r.mtimeNs ?? null,
    r.xattrs ?? null,
    r.link ?? null,
  ];
}

export function toRecord(r: FileRow): FileRecord {
  const rec: FileRecord = {
    path: r.path,
    kind: r.kind,
    size: r.size,
    mtimeMs: r.mtime_ms,
    mode: r.mode,
    ino: r.ino,
    ctimeMs: r.ctime_ms,
  };
  if (r.uid !== null) rec.uid = r.uid;
  if (r.gid !== null) rec.gid = r.gid;
  if (r.hash !== null) rec.hash = r.hash;
  if (r.target !== null) rec.target = r.target;
  if (r.mtime_ns !== null && r.mtime_ns !== 0) rec.mtimeNs = r.mtime_ns;
  if (r.xattrs !== null) rec.xattrs = r.xattrs;
  if (r.link !== null) rec.link = r.link;
  return rec;
}
