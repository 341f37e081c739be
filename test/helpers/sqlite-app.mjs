/*
 * A busy application's two SQLite databases, for the end-to-end tests and the chaos bench:
 * `wal.db` in WAL mode (automatic checkpoints every 64 pages) and `journal.db` with a rollback
 * journal, each written in small transactions as fast as it can. Transaction n inserts three
 * rows tagged n and sets the one-row counter to n, so a copy is "the state after some committed
 * transaction" exactly when its counter is n, it holds 3n rows, and rows tagged 1..n.
 *
 * Run as a process (`node sqlite-app.mjs <dir>`), it prints "<db> <n>" on stdout after each
 * commit (a pipe: written before the next transaction starts), so whoever kills it knows the
 * last transaction each database committed.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');

export const DATABASES = [
  { name: 'wal.db', mode: 'wal' },
  { name: 'journal.db', mode: 'delete' },
];

function openApp(dir, { name, mode }) {
  const db = new Database(join(dir, name), { timeout: 5000 });
  db.pragma(`journal_mode = ${mode}`);
  db.pragma('synchronous = NORMAL');
  if (mode === 'wal') db.pragma('wal_autocheckpoint = 64');
  db.exec(`CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
    INSERT OR IGNORE INTO counter VALUES (1, 0);
    CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, txn INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS rows_txn ON rows (txn);`);
  const next = db.prepare('SELECT n FROM counter').pluck();
  const insert = db.prepare('INSERT INTO rows (txn, body) VALUES (?, ?)');
  const bump = db.prepare('UPDATE counter SET n = ?');
  const commit = db.transaction((n) => {
    for (let i = 0; i < 3; i++) insert.run(n, `${name} txn ${n} row ${i} `.repeat(8));
    bump.run(n);
  });
  return {
    db,
    step: () => {
      const n = next.get() + 1;
      commit(n);
      return n;
    },
  };
}

/**
 * What the database at `path` holds: `ok` when it opens and passes integrity_check and is the
 * state after transaction `n` exactly (counter, row count and tags agree), else `problem`.
 */
export function checkDatabase(path) {
  let db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const integrity = db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') return { ok: false, problem: `integrity_check: ${integrity}` };
    const n = db.prepare('SELECT n FROM counter').pluck().get();
    const rows = db.prepare('SELECT count(*) FROM rows').pluck().get();
    const txns = db.prepare('SELECT count(DISTINCT txn) FROM rows').pluck().get();
    const top = db.prepare('SELECT coalesce(max(txn), 0) FROM rows').pluck().get();
    if (rows !== 3 * n || txns !== n || top !== n)
      return {
        ok: false,
        problem: `a mix of states: counter ${n}, ${rows} rows, ${txns} transactions, last ${top}`,
      };
    return { ok: true, n };
  } catch (err) {
    return { ok: false, problem: err.message };
  } finally {
    db?.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  // A pause after each round (ms): on a small machine an app spinning flat out starves the
  // agents it runs beside, which is not the load a mirror is measured under.
  const pauseMs = Number(process.argv[3] ?? 1);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const apps = DATABASES.map((d) => ({ name: d.name, ...openApp(dir, d) }));
  for (;;) {
    for (const app of apps) process.stdout.write(`${app.name} ${app.step()}\n`);
    if (pauseMs > 0) Atomics.wait(nap, 0, 0, pauseMs);
  }
}
