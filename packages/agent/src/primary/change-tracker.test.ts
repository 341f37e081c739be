import { execFileSync } from 'node:child_process';
import {
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { type JournalOp, Store } from '../node/store.js';
import { XattrReader } from '../node/xattr-reader.js';
import { ChangeTracker } from './change-tracker.js';
import { DatabaseImages } from './sqlite-snapshot.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A tracker (with its store) of a new folder `root`, all removed after the test. */
function newTracker(): { root: string; tracker: ChangeTracker; store: Store; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mimic-tracker-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  mkdirSync(root);
  const store = new Store(join(dir, 'mimic.db'));
  const tracker = new ChangeTracker(
    root,
    store,
    () => false,
    () => ({ term: 1, node: 'n' }),
    {
      xattrs: new XattrReader({ xattrs: true, acls: true }, () => {}),
      images: new DatabaseImages(join(dir, 'images')),
    },
  );
  cleanups.push(() => {
    tracker.close();
    store.close();
  });
  return { root, tracker, store, dir };
}

test('a tracker with no sender taking content journals a large tree in a few commits', async () => {
  const { root, tracker } = newTracker();
  // 80 MiB of files: more than the content kept for a sender, which no one takes here.
  const mib = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < 80; i++) writeFileSync(join(root, `f${i}`), mib.fill(i));
  let commits = 0;
  tracker.on('appended', () => commits++);
  await tracker.scan();
  expect(tracker.manifest.size).toBe(80);
  expect(tracker.lastSeq).toBe(80);
  // One batch, one commit (a commit per file once the kept content filled up, before).
  expect(commits).toBe(1);
});

test('a new folder is listed again a moment later: what was made in it after its first listing is found', async () => {
  const { root, tracker } = newTracker();
  mkdirSync(join(root, 'a'));
  // As a watcher would: the folder is reported, and nothing inside it ever is.
  tracker.mark('a');
  await tracker.idle();
  expect(tracker.manifest.has('a')).toBe(true);
  mkdirSync(join(root, 'a/b'));
  writeFileSync(join(root, 'a/b/late.txt'), 'made after the folder was first listed');
  await tracker.settled();
  expect([...tracker.manifest.keys()].sort()).toEqual(['a', 'a/b', 'a/b/late.txt']);
});

test('a first scan (files not stat-ed, opened first) records files, links and folders as a later scan would', async () => {
  const { root, tracker } = newTracker();
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'd/f.txt'), 'content');
  writeFileSync(join(root, 'empty'), '');
  symlinkSync('d/f.txt', join(root, 'link'));
  symlinkSync('nowhere', join(root, 'dangling'));
  execFileSync('mkfifo', [join(root, 'pipe')]);
  await tracker.scan();
  await tracker.settled();
  const m = tracker.manifest;
  expect([...m.keys()].sort()).toEqual(['d', 'd/f.txt', 'dangling', 'empty', 'link']);
  expect(m.get('link')).toMatchObject({ kind: 'symlink', target: 'd/f.txt' });
  expect(m.get('d/f.txt')).toMatchObject({
    kind: 'file',
    size: 7,
    ino: lstatSync(join(root, 'd/f.txt')).ino,
  });
  expect(m.get('empty')).toMatchObject({ kind: 'file', size: 0 });
  // The second scan finds nothing new: the first recorded the same stats an lstat gives.
  let appended = 0;
  tracker.on('appended', () => appended++);
  await tracker.scan();
  await tracker.settled();
  expect(appended).toBe(0);
});

test("a new folder's second listing looks again at what its first found: a write it missed is read", async () => {
  const { root, tracker } = newTracker();
  mkdirSync(join(root, 'a'));
  writeFileSync(join(root, 'a/f.txt'), '');
  // As a watcher would: the folder is reported; its file's write comes before any watch on it.
  tracker.mark('a');
  await tracker.idle();
  expect(tracker.manifest.get('a/f.txt')?.size).toBe(0);
  writeFileSync(join(root, 'a/f.txt'), 'deep');
  await tracker.settled();
  expect(tracker.manifest.get('a/f.txt')?.size).toBe(4);
});

test('a rename journals its row and moves its manifest rows in one transaction', async () => {
  const { root, tracker, store, dir } = newTracker();
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'd/f.txt'), 'content that moves');
  await tracker.scan();
  const before = tracker.lastSeq;
  execFileSync('mv', [join(root, 'd'), join(root, 'e')]);
  tracker.mark('d');
  tracker.mark('e');
  await tracker.settled();
  const rows = store.readJournal(before + 1, 10).map((r) => r.op);
  expect(rows).toContainEqual({ kind: 'rename', from: 'd', to: 'e' });
  const onDisk = new Store(join(dir, 'mimic.db'));
  try {
    expect([...onDisk.loadFiles().keys()].sort()).toEqual(['e', 'e/f.txt']);
  } finally {
    onDisk.close();
  }
});

test('a rename whose journal write fails leaves the stored manifest as it was', async () => {
  const { root, tracker, store, dir } = newTracker();
  writeFileSync(join(root, 'a.txt'), 'content that moves');
  await tracker.scan();
  let failed = 0;
  tracker.on('error', () => failed++);
  const append = store.append.bind(store);
  store.append = () => {
    throw new Error('disk full');
  };
  execFileSync('mv', [join(root, 'a.txt'), join(root, 'b.txt')]);
  tracker.mark('a.txt');
  tracker.mark('b.txt');
  await tracker.idle();
  store.append = append;
  expect(failed).toBeGreaterThan(0);
  const onDisk = new Store(join(dir, 'mimic.db'));
  try {
    expect([...onDisk.loadFiles().keys()]).toEqual(['a.txt']);
  } finally {
    onDisk.close();
  }
});

test('a folder replaced by a link to an outside folder is that link, not what it points to', async () => {
  const { root, tracker } = newTracker();
  const outside = mkdtempSync(join(tmpdir(), 'mimic-outside-'));
  cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
  writeFileSync(join(outside, 'passwd'), 'outside the root');
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'd/passwd'), 'inside');
  await tracker.scan();
  rmSync(join(root, 'd'), { recursive: true });
  symlinkSync(outside, join(root, 'd'));
  // As a watcher reports it, the old file's path first.
  tracker.mark('d/passwd');
  tracker.mark('d');
  await tracker.settled();
  expect([...tracker.manifest.keys()]).toEqual(['d']);
  expect(tracker.manifest.get('d')).toMatchObject({ kind: 'symlink', target: outside });
});

/** The journal's ops after `seq`. */
function opsAfter(store: Store, seq: number): JournalOp[] {
  return store.readJournal(seq + 1, 1000).map((r) => r.op);
}

function kinds(ops: JournalOp[], kind: JournalOp['kind']): JournalOp[] {
  return ops.filter((op) => op.kind === kind);
}

test('a moved file is journaled as one rename, not a delete and a write of new content', async () => {
  const { root, tracker, store } = newTracker();
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'a.txt'), 'content that moves');
  await tracker.scan();
  const before = tracker.lastSeq;
  const hash = tracker.manifest.get('a.txt')?.hash;
  renameSync(join(root, 'a.txt'), join(root, 'd/b.txt'));
  // As a watcher reports it: the vanished name, then the new one.
  tracker.mark('a.txt');
  tracker.mark('d/b.txt');
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'rename')).toEqual([{ kind: 'rename', from: 'a.txt', to: 'd/b.txt' }]);
  expect(kinds(ops, 'delete')).toEqual([]);
  // A write row may follow for the new name, with the same content: never new data.
  for (const w of kinds(ops, 'write')) expect(w).toMatchObject({ path: 'd/b.txt', hash });
  expect(kinds(ops, 'write').some((w) => 'prevHash' in w)).toBe(false);
  expect([...tracker.manifest.keys()].sort()).toEqual(['d', 'd/b.txt']);
});

test('a moved file whose old name is never reported is still journaled as a rename', async () => {
  const { root, tracker, store } = newTracker();
  writeFileSync(join(root, 'a.txt'), 'content that moves');
  await tracker.scan();
  const before = tracker.lastSeq;
  renameSync(join(root, 'a.txt'), join(root, 'b.txt'));
  tracker.mark('b.txt');
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'rename')).toEqual([{ kind: 'rename', from: 'a.txt', to: 'b.txt' }]);
  expect(kinds(ops, 'delete')).toEqual([]);
  expect([...tracker.manifest.keys()]).toEqual(['b.txt']);
});

test('a moved folder is journaled as one rename of the folder, its contents moved with it', async () => {
  const { root, tracker, store } = newTracker();
  mkdirSync(join(root, 'd/y'), { recursive: true });
  writeFileSync(join(root, 'd/x'), 'x');
  writeFileSync(join(root, 'd/y/z'), 'z');
  await tracker.scan();
  const before = tracker.lastSeq;
  const inoZ = tracker.manifest.get('d/y/z')?.ino;
  renameSync(join(root, 'd'), join(root, 'e'));
  // As a watcher may report it: every vanished path, then the folder's new name.
  for (const rel of ['d/y/z', 'd/x', 'd/y', 'd', 'e']) tracker.mark(rel);
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'rename')).toEqual([{ kind: 'rename', from: 'd', to: 'e' }]);
  expect(kinds(ops, 'delete')).toEqual([]);
  expect(kinds(ops, 'write')).toEqual([]);
  expect([...tracker.manifest.keys()].sort()).toEqual(['e', 'e/x', 'e/y', 'e/y/z']);
  expect(tracker.manifest.get('e/y/z')).toMatchObject({ path: 'e/y/z', ino: inoZ });
});

test('a delete and an unrelated new file are not paired as a rename', async () => {
  const { root, tracker, store } = newTracker();
  writeFileSync(join(root, 'a.txt'), 'old');
  await tracker.scan();
  const before = tracker.lastSeq;
  // Made before the delete, so it cannot take the deleted file's inode.
  writeFileSync(join(root, 'b.txt'), 'new');
  rmSync(join(root, 'a.txt'));
  tracker.mark('a.txt');
  tracker.mark('b.txt');
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'rename')).toEqual([]);
  expect(kinds(ops, 'delete')).toEqual([{ kind: 'delete', path: 'a.txt' }]);
  expect(kinds(ops, 'write')).toEqual([expect.objectContaining({ kind: 'write', path: 'b.txt', size: 3 })]);
  expect([...tracker.manifest.keys()]).toEqual(['b.txt']);
});

test('a path seen gone is deleted only on a second look, so a new name reported late still claims it', async () => {
  const { root, tracker, store } = newTracker();
  mkdirSync(join(root, 'sub'));
  writeFileSync(join(root, 'a.txt'), 'content that moves');
  writeFileSync(join(root, 'gone.txt'), 'content that goes');
  await tracker.scan();
  const before = tracker.lastSeq;
  renameSync(join(root, 'a.txt'), join(root, 'sub/b.txt'));
  rmSync(join(root, 'gone.txt'));
  tracker.mark('a.txt');
  tracker.mark('gone.txt');
  await tracker.idle();
  // Held back: nothing journaled, both still in the manifest.
  expect(opsAfter(store, before)).toEqual([]);
  expect(tracker.manifest.has('a.txt')).toBe(true);
  expect(tracker.manifest.has('gone.txt')).toBe(true);
  // The new name's event comes later, in another folder than the old name's.
  tracker.mark('sub/b.txt');
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'rename')).toEqual([{ kind: 'rename', from: 'a.txt', to: 'sub/b.txt' }]);
  expect(kinds(ops, 'delete')).toEqual([{ kind: 'delete', path: 'gone.txt' }]);
  expect([...tracker.manifest.keys()].sort()).toEqual(['sub', 'sub/b.txt']);
});

test("a vanished path's folder is listed: a new name the watcher never reported is found as a rename", async () => {
  const { root, tracker, store } = newTracker();
  writeFileSync(join(root, 'a.txt'), 'content that moves');
  await tracker.scan();
  const before = tracker.lastSeq;
  renameSync(join(root, 'a.txt'), join(root, 'b.txt'));
  tracker.mark('a.txt');
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'rename')).toEqual([{ kind: 'rename', from: 'a.txt', to: 'b.txt' }]);
  expect(kinds(ops, 'delete')).toEqual([]);
  expect([...tracker.manifest.keys()]).toEqual(['b.txt']);
});

test('a hard link is a second name of the file, not a rename: the first name stays', async () => {
  const { root, tracker, store } = newTracker();
  writeFileSync(join(root, 'a.txt'), 'two names');
  await tracker.scan();
  const before = tracker.lastSeq;
  const hash = tracker.manifest.get('a.txt')?.hash;
  linkSync(join(root, 'a.txt'), join(root, 'b.txt'));
  // As a watcher may report it: the first name too (its link count changed).
  tracker.mark('a.txt');
  tracker.mark('b.txt');
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'rename')).toEqual([]);
  expect(kinds(ops, 'delete')).toEqual([]);
  // Its content travels once: the new name is a link to the first, not a write.
  expect(kinds(ops, 'write')).toEqual([]);
  expect(kinds(ops, 'link')).toEqual([{ kind: 'link', path: 'b.txt', target: 'a.txt' }]);
  expect([...tracker.manifest.keys()].sort()).toEqual(['a.txt', 'b.txt']);
  expect(tracker.manifest.get('b.txt')).toMatchObject({ hash, link: 'a.txt' });
  expect(tracker.manifest.get('b.txt')?.ino).toBe(tracker.manifest.get('a.txt')?.ino);
});

test('new content written through one name of a hard-linked file: one write, the other names linked to it', async () => {
  const { root, tracker, store } = newTracker();
  writeFileSync(join(root, 'a.txt'), 'three names');
  linkSync(join(root, 'a.txt'), join(root, 'b.txt'));
  linkSync(join(root, 'a.txt'), join(root, 'c.txt'));
  await tracker.scan();
  const first = opsAfter(store, 0);
  expect(kinds(first, 'write').map((o) => (o as { path: string }).path)).toEqual(['a.txt']);
  expect(kinds(first, 'link')).toHaveLength(2);
  const before = tracker.lastSeq;
  writeFileSync(join(root, 'b.txt'), 'new content, all three');
  tracker.mark('b.txt');
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'write').map((o) => (o as { path: string }).path)).toEqual(['b.txt']);
  expect(kinds(ops, 'link')).toEqual([
    { kind: 'link', path: 'a.txt', target: 'b.txt' },
    { kind: 'link', path: 'c.txt', target: 'b.txt' },
  ]);
  const hash = tracker.manifest.get('b.txt')?.hash;
  expect(tracker.manifest.get('a.txt')).toMatchObject({ hash, link: 'b.txt' });
  // Nothing more to say at the next scan: every name's record is the file as it is.
  const after = tracker.lastSeq;
  await tracker.scan();
  expect(opsAfter(store, after)).toEqual([]);
});

test('removing one name of a hard-linked file is a delete of that name only, after its second look', async () => {
  const { root, tracker, store } = newTracker();
  writeFileSync(join(root, 'a.txt'), 'two names');
  linkSync(join(root, 'a.txt'), join(root, 'b.txt'));
  await tracker.scan();
  const before = tracker.lastSeq;
  rmSync(join(root, 'a.txt'));
  tracker.mark('a.txt');
  tracker.mark('b.txt');
  await tracker.idle();
  expect(kinds(opsAfter(store, before), 'delete')).toEqual([]);
  await tracker.settled();
  const ops = opsAfter(store, before);
  expect(kinds(ops, 'rename')).toEqual([]);
  expect(kinds(ops, 'delete')).toEqual([{ kind: 'delete', path: 'a.txt' }]);
  expect([...tracker.manifest.keys()]).toEqual(['b.txt']);
});

test('settled() resolves at once with nothing to do, and after the last later look otherwise', async () => {
  const { root, tracker } = newTracker();
  writeFileSync(join(root, 'a.txt'), 'x');
  await tracker.scan();
  await tracker.settled();
  rmSync(join(root, 'a.txt'));
  tracker.mark('a.txt');
  await tracker.idle();
  // The delete waits for its second look, which settled() waits for.
  expect(tracker.manifest.has('a.txt')).toBe(true);
  await tracker.settled();
  expect(tracker.manifest.has('a.txt')).toBe(false);
  expect(tracker.busy).toBe(false);
});
