import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { requireCjs } from './require-cjs.js';
import { type FileRecord, Store } from './store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function openStore(): Store {
  const dir = mkdtempSync(join(tmpdir(), 'mimic-store-'));
  dirs.push(dir);
  return new Store(join(dir, 'mimic.db'));
}

function rec(path: string): FileRecord {
  return { path, kind: 'file', size: 1, mtimeMs: 1, mode: 0o644, ino: 1, ctimeMs: 1, hash: '00' };
}

const segment = fc.constantFrom('a', 'a b', 'a-', 'a.b', 'a0', 'a~', 'b', 'é', '\n');

describe('Store.deleteTree', () => {
  test('removes exactly the path and the paths below it', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.array(segment, { minLength: 1, maxLength: 3 }), { maxLength: 20 }),
        fc.array(segment, { minLength: 1, maxLength: 2 }),
        (paths, target) => {
          const store = openStore();
          try {
            const all = [...new Set(paths.map((p) => p.join('/')))];
            store.tx(() => {
              for (const p of all) store.putFile(rec(p));
            });
            const t = target.join('/');
            store.deleteTree(t);
            const left = [...store.loadFiles().keys()].sort();
            const expected = all.filter((p) => p !== t && !p.startsWith(`${t}/`)).sort();
            expect(left).toEqual(expected);
          } finally {
            store.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('Store.tx', () => {
  test('rolls back everything when the function throws, and nests', () => {
    const store = openStore();
    try {
      expect(() =>
        store.tx(() => {
          store.putFile(rec('x'));
          store.tx(() => store.putFile(rec('y')));
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(store.loadFiles().size).toBe(0);
      expect(store.inTransaction).toBe(false);
      store.tx(() => store.putFile(rec('z')));
      expect([...store.loadFiles().keys()]).toEqual(['z']);
    } finally {
      store.close();
    }
  });
});

describe('Store.readJournal', () => {
  test('reads the same rows from what it kept as from the database, through rollbacks and prunes', () => {
    // Each step: append a transaction of n rows (committed or rolled back), prune, or read.
    const step = fc.oneof(
      fc.record({
        kind: fc.constant('append' as const),
        n: fc.integer({ min: 1, max: 3000 }),
        fail: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('prune' as const), back: fc.integer({ min: 0, max: 5000 }) }),
      fc.record({
        kind: fc.constant('read' as const),
        back: fc.integer({ min: 0, max: 10000 }),
        limit: fc.integer({ min: 1, max: 600 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), (steps) => {
        const store = openStore();
        const epoch = { term: 1, node: 'n' };
        let seq = 0;
        try {
          for (const s of steps) {
            if (s.kind === 'append') {
              const first = seq;
              try {
                store.tx(() => {
                  for (let i = 0; i < s.n; i++)
                    store.append(++seq, epoch, { kind: 'delete', path: `p${seq}` });
                  if (s.fail) throw new Error('rolled back');
                });
              } catch {
                seq = first;
              }
            } else if (s.kind === 'prune') {
              store.pruneJournal(Math.max(1, seq - s.back));
            } else {
              const from = Math.max(1, seq - s.back);
              const got = store.readJournal(from, s.limit);
              const fresh = new Store(store.path);
              try {
                expect(got).toEqual(fresh.readJournal(from, s.limit));
              } finally {
                fresh.close();
              }
            }
          }
        } finally {
          store.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('Store node state', () => {
  test('a new node is in term 0 of its own epoch, with no role, fork, applied seq or folder', () => {
    const store = openStore();
    try {
      const id = store.nodeId();
      expect(id).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
      expect(store.nodeId()).toBe(id);
      expect(store.epoch()).toEqual({ term: 0, node: id });
      expect(store.role()).toBeNull();
      expect(store.fork()).toBeUndefined();
      expect(store.appliedSeq()).toBeNull();
      expect(store.folderId()).toBeNull();
      expect(store.fencedBy()).toBeNull();
    } finally {
      store.close();
    }
  });

  test('fencing is remembered across a reopen and forgotten by the next role', () => {
    const store = openStore();
    const by = { url: 'ws://127.0.0.1:7070', epoch: { term: 3, node: 'b' } };
    store.fence(by);
    const path = store.path;
    store.close();
    const again = new Store(path);
    try {
      expect(again.role()).toBe('fenced');
      expect(again.fencedBy()).toEqual(by);
      again.setRole('mirror');
      expect(again.fencedBy()).toBeNull();
    } finally {
      again.close();
    }
  });

  test('a promotion records the fork point, the new epoch and the role in one step', () => {
    const store = openStore();
    try {
      store.setEpoch({ term: 2, node: 'old' });
      store.recordPromotion(41, { term: 2, node: 'old' }, { term: 3, node: 'me' });
      expect(store.fork()).toEqual({ epoch: { term: 2, node: 'old' }, seq: 41 });
      expect(store.epoch()).toEqual({ term: 3, node: 'me' });
      expect(store.role()).toBe('primary');
      expect(store.appliedSeq()).toBe(41);
      // An empty journal continues after what the mirror applied.
      expect(store.lastSeq()).toBe(41);
    } finally {
      store.close();
    }
  });
});

describe('Store schema upgrade', () => {
  test('a store made before owners were kept opens, keeps its rows, and records owners from then on', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimic-store-'));
    dirs.push(dir);
    const path = join(dir, 'mimic.db');
    // The files table as the first schema made it, with one row.
    const SqliteDatabase = requireCjs('better-sqlite3') as typeof import('better-sqlite3');
    const old = new SqliteDatabase(path);
    old.exec(`CREATE TABLE files (
      path TEXT PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL, mtime_ms REAL NOT NULL,
      mode INTEGER NOT NULL, hash TEXT, target TEXT, ino INTEGER NOT NULL, ctime_ms REAL NOT NULL)`);
    old.prepare("INSERT INTO files VALUES ('a', 'file', 1, 1, 420, '00', NULL, 1, 1)").run();
    old.close();
    const store = new Store(path);
    expect(store.loadFiles().get('a')).toEqual(rec('a'));
    store.putFile({ ...rec('b'), uid: 33, gid: 44 });
    store.close();
    const again = new Store(path);
    expect(again.loadFiles().get('b')).toEqual({ ...rec('b'), uid: 33, gid: 44 });
    // And the ns of a time, the xattrs and a hard link's first name, as they were put.
    const full = { ...rec('c'), mtimeNs: 999_999, xattrs: Buffer.from([0, 0, 0, 0]), link: 'b' };
    again.putFile(full);
    expect(again.loadFiles().get('c')).toEqual(full);
    again.close();
  });
});
