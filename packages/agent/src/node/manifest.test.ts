import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Manifest } from './manifest.js';
import type { FileRecord } from './store-schema.js';

const path = fc.constantFrom('a', 'b', 'c', 'd/e', 'd/f', 'g/h/i', 'ü', 'x'.repeat(40));

const record = fc.record(
  {
    kind: fc.constantFrom<FileRecord['kind']>('file', 'dir', 'symlink'),
    size: fc.oneof(fc.nat(), fc.constant(2 ** 40 + 3)),
    mtimeMs: fc.double({ min: 0, max: 2e12, noNaN: true }),
    mtimeNs: fc.integer({ min: 1, max: 999_999_999 }),
    mode: fc.integer({ min: 0, max: 0o177777 }),
    uid: fc.nat({ max: 2 ** 32 - 1 }),
    gid: fc.nat({ max: 2 ** 32 - 1 }),
    ino: fc.integer({ min: 1, max: 20 }),
    ctimeMs: fc.double({ min: 0, max: 2e12, noNaN: true }),
    hash: fc.oneof(
      fc.stringMatching(/^[0-9a-f]{16}$/),
      fc.stringMatching(/^[0-9a-f]{64}$/),
      fc.constant('0000000000000000'),
    ),
    target: fc.string(),
    xattrs: fc.uint8Array({ maxLength: 8 }),
    link: fc.string(),
  },
  { requiredKeys: ['kind', 'size', 'mtimeMs', 'mode', 'ino', 'ctimeMs'] },
);

type Op =
  | { op: 'set'; path: string; rec: Omit<FileRecord, 'path'> }
  | { op: 'delete'; path: string }
  | { op: 'clear' };

const ops = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), path, rec: record }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), path }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('clear' as const) }) },
  ),
  { maxLength: 60 },
);

describe('Manifest', () => {
  test('behaves as a Map of records, with an index by inode', () => {
    fc.assert(
      fc.property(ops, (list: Op[]) => {
        const m = new Manifest([], { byIno: true });
        const model = new Map<string, FileRecord>();
        // The index names the path last set with an inode, while that path still holds it.
        const lastOfIno = new Map<number, string>();
        const leave = (p: string) => {
          const old = model.get(p);
          if (old && lastOfIno.get(old.ino) === p) lastOfIno.delete(old.ino);
        };
        for (const o of list) {
          if (o.op === 'set') {
            const rec = { ...o.rec, path: o.path };
            leave(o.path);
            m.set(o.path, rec);
            model.set(o.path, rec);
            lastOfIno.set(rec.ino, o.path);
          } else if (o.op === 'delete') {
            leave(o.path);
            expect(m.delete(o.path)).toBe(model.delete(o.path));
          } else {
            m.clear();
            model.clear();
            lastOfIno.clear();
          }
        }
        expect(m.size).toBe(model.size);
        expect(new Map(m)).toEqual(model);
        for (const [p, rec] of model) expect(m.get(p)).toEqual(rec);
        for (let ino = 1; ino <= 20; ino++) expect(m.pathOfIno(ino)).toBe(lastOfIno.get(ino));
      }),
    );
  });

  test('a walk gives the known paths it did not see; paths added meanwhile count as seen', () => {
    const rec = (ino: number): FileRecord => ({
      path: '',
      kind: 'file',
      size: 1,
      mtimeMs: 1,
      mode: 0o644,
      ino,
      ctimeMs: 1,
    });
    const m = new Manifest();
    for (const [i, p] of ['a', 'b', 'c', 'd'].entries()) m.set(p, rec(i + 1));
    const first = m.beginWalk();
    m.seen('a', first);
    m.seen('c', first);
    m.seen('zz', first);
    m.set('e', rec(9));
    expect([...m.unseen(first)].sort()).toEqual(['b', 'd']);
    const second = m.beginWalk();
    expect([...m.unseen(second)].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    // A third walk overlapping the second: what either sees after the third began is seen by
    // the second; what only the second sees is not seen by the third.
    const third = m.beginWalk();
    m.seen('a', third);
    m.seen('b', second);
    m.seen('a', second);
    expect([...m.unseen(second)].sort()).toEqual(['c', 'd', 'e']);
    expect([...m.unseen(third)].sort()).toEqual(['b', 'c', 'd', 'e']);
    // The first walk, still going, ends: what it saw stays seen, and b, seen by a later walk
    // since, is there too.
    expect([...m.unseen(first)].sort()).toEqual(['d']);
  });

  test('keeps when a path was read across updates of its record, not past its deletion', () => {
    const rec: FileRecord = { path: 'a', kind: 'file', size: 1, mtimeMs: 1, mode: 0o644, ino: 1, ctimeMs: 1 };
    const m = new Manifest();
    m.set('a', rec, 500);
    expect(m.readAt('a')).toBe(500);
    m.set('a', { ...rec, size: 2 });
    expect(m.readAt('a')).toBe(500);
    m.delete('a');
    m.set('a', rec);
    expect(m.readAt('a')).toBeUndefined();
  });
});
