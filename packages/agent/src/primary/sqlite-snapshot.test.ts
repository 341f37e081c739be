import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { requireCjs } from '../node/require-cjs.js';
import { companionOf, companionsOf, isSqliteFile, isSqliteHeader } from '../node/sqlite-files.js';
import { DatabaseImages, readDatabase } from './sqlite-snapshot.js';

const SqliteDatabase: typeof Database = requireCjs('better-sqlite3');
const dir = mkdtempSync(join(tmpdir(), 'mimic-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A database in `mode` with a table of counted rows, and its open writer. */
function database(mode: 'wal' | 'delete'): { path: string; db: Database.Database } {
  const path = join(dir, `app${n++}.db`);
  const db = new SqliteDatabase(path);
  db.pragma(`journal_mode = ${mode}`);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  return { path, db };
}

/** What an image holds: integrity and the rows, opened as a database of its own. */
function open(image: Buffer): { ok: string; rows: number } {
  const copy = join(dir, `image${n++}.db`);
  writeFileSync(copy, image);
  const db = new SqliteDatabase(copy, { readonly: true });
  try {
    const ok = db.pragma('integrity_check', { simple: true }) as string;
    const rows = (db.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c;
    return { ok, rows };
  } finally {
    db.close();
  }
}

describe('SQLite files', () => {
  test('a database is known by its header, its companions by their names', () => {
    const { path, db } = database('wal');
    db.close();
    expect(isSqliteFile(path)).toBe(true);
    expect(isSqliteHeader(readFileSync(path).subarray(0, 16))).toBe(true);
    writeFileSync(join(dir, 'not.db'), 'SQLite format 2, not really a database at all'.padEnd(600, '.'));
    expect(isSqliteFile(join(dir, 'not.db'))).toBe(false);
    expect(isSqliteFile(join(dir, 'missing.db'))).toBe(false);
    expect(companionOf('a/app.db-wal')).toBe('a/app.db');
    expect(companionOf('a/app.db-journal')).toBe('a/app.db');
    expect(companionOf('-wal')).toBeNull();
    expect(companionOf('notes.txt')).toBeNull();
    expect(companionsOf('x.db')).toEqual(['x.db-wal', 'x.db-shm', 'x.db-journal']);
  });

  test.each(['wal', 'delete'] as const)(
    'in %s mode, an image holds the last committed state, never a transaction under way',
    (mode) => {
      const { path, db } = database(mode);
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 500; i++) insert.run('x'.repeat(100));
      expect(open(readDatabase(path)!)).toEqual({ ok: 'ok', rows: 500 });
      // A transaction half written (in WAL mode its frames are in the -wal; in rollback mode
      // its pages may be in the database already, the old ones in the journal): not in the image.
      db.exec('BEGIN IMMEDIATE');
      for (let i = 0; i < 300; i++) insert.run('y'.repeat(100));
      const during = readDatabase(path, 50);
      if (mode === 'wal') expect(open(during!)).toEqual({ ok: 'ok', rows: 500 });
      else if (during) expect(open(during)).toEqual({ ok: 'ok', rows: 500 });
      db.exec('COMMIT');
      expect(open(readDatabase(path)!)).toEqual({ ok: 'ok', rows: 800 });
      db.close();
    },
  );

  test('a database locked by a writer past the wait is not read (null, read again later)', () => {
    const { path, db } = database('delete');
    db.prepare('INSERT INTO t (v) VALUES (?)').run('a');
    db.exec('BEGIN EXCLUSIVE');
    db.prepare('INSERT INTO t (v) VALUES (?)').run('b');
    expect(readDatabase(path, 20)).toBeNull();
    db.exec('COMMIT');
    expect(open(readDatabase(path)!).rows).toBe(2);
    db.close();
    writeFileSync(join(dir, 'garbage.db'), Buffer.alloc(4096, 7));
    expect(readDatabase(join(dir, 'garbage.db'))).toBeNull();
  });

  test('images are kept by path and hash, the previous one dropped, and pruned after a restart', () => {
    const { path, db } = database('wal');
    const images = new DatabaseImages(join(dir, 'images'));
    const first = images.take('app.db', path)!;
    db.prepare('INSERT INTO t (v) VALUES (?)').run('more');
    const second = images.take('app.db', path)!;
    expect(second.hash).not.toBe(first.hash);
    expect(images.fileOf('app.db', first.hash)).toBeNull();
    const file = images.fileOf('app.db', second.hash)!;
    expect(readFileSync(file).equals(second.image)).toBe(true);
    const again = new DatabaseImages(join(dir, 'images'));
    expect(again.has('app.db')).toBe(false);
    again.prune([['app.db', second.hash]]);
    expect(again.has('app.db')).toBe(true);
    again.prune([]);
    expect(existsSync(file)).toBe(false);
    db.close();
  });
});
