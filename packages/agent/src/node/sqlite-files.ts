/*
 * SQLite database files as any node sees them: a database is known by its 16-byte header,
 * and comes with companion files (-wal, -shm, -journal) that belong to it and only make
 * sense with the very version of it they were written beside.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** "SQLite format 3" and a NUL: the first 16 bytes of every database file. */
export const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');
/** The smallest database: one page of the smallest page size. */
export const SQLITE_MIN_BYTES = 512;

const COMPANIONS = ['-wal', '-shm', '-journal'] as const;

/** Whether `head` (a file's first bytes) is a SQLite database header. */
export const isSqliteHeader = (head: Uint8Array): boolean =>
  head.length >= SQLITE_HEADER.length && SQLITE_HEADER.equals(head.subarray(0, SQLITE_HEADER.length));

/** Whether the open file `fd` of `size` bytes starts with a SQLite header (one 16-byte pread). */
export function fdIsSqlite(fd: number, size: number): boolean {
  if (size < SQLITE_MIN_BYTES) return false;
  const head = Buffer.alloc(SQLITE_HEADER.length);
  return readSync(fd, head, 0, head.length, 0) === head.length && isSqliteHeader(head);
}

/** Whether the file at `abs` is a SQLite database (false when it is not there). */
export function isSqliteFile(abs: string): boolean {
  let fd: number;
  try {
    fd = openSync(abs, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(SQLITE_HEADER.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && isSqliteHeader(head);
  } finally {
    closeSync(fd);
  }
}

/** The database a companion file belongs to (`app.db-wal` → `app.db`), or null for other names. */
export function companionOf(rel: string): string | null {
  for (const suffix of COMPANIONS)
    if (rel.endsWith(suffix) && rel.length > suffix.length) return rel.slice(0, -suffix.length);
  return null;
}

/** The companion files of a database path. */
export const companionsOf = (rel: string): string[] => COMPANIONS.map((s) => rel + s);
