import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { Store } from '../node/store.js';
import { ChangeTracker } from './change-tracker.js';

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
