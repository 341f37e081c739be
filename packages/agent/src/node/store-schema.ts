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

/** The columns of `files` in the order `rawRecord` reads them (a raw row is an array). */
export const RAW_FILE_COLUMNS =
  'path, kind, size, mtime_ms, mode, ino, ctime_ms, uid, gid, hash, target, mtime_ns, xattrs, link';

type RawFileRow = [
  string,
  FileRecord['kind'],
  number,
  number,
  number,
  number,
  number,
  number | null,
  number | null,
  string | null,
  string | null,
  number | null,
  Uint8Array | null,
  string | null,
];

/**
 * The record of a `files` row read raw (an array in RAW_FILE_COLUMNS order): better-sqlite3
 * builds no object per row, which halves the load of a big manifest (100,000 rows: 0.5 s to
 * 0.25 s).
 */
export function rawRecord(row: unknown[]): FileRecord {
  const [path, kind, size, mtimeMs, mode, ino, ctimeMs, uid, gid, hash, target, mtimeNs, xattrs, link] =
    row as RawFileRow;
  const rec: FileRecord = { path, kind, size, mtimeMs, mode, ino, ctimeMs };
  if (uid !== null) rec.uid = uid;
  if (gid !== null) rec.gid = gid;
  if (hash !== null) rec.hash = hash;
  if (target !== null) rec.target = target;
  if (mtimeNs !== null && mtimeNs !== 0) rec.mtimeNs = mtimeNs;
  if (xattrs !== null) rec.xattrs = xattrs;
  if (link !== null) rec.link = link;
  return rec;
}
