import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { NodeCounters } from '../node/counters.js';
import { Store } from '../node/store.js';
import { XattrReader } from '../node/xattr-reader.js';
import { ChangeTracker } from './change-tracker.js';
import { RESCAN_DUTY, Rescanner } from './rescanner.js';
import { DatabaseImages } from './sqlite-snapshot.js';

const cleanups: (() => void)[] = [];
/** Slices of 2 ms, so that a small tree's rescan has many. */
const FINE = { duty: RESCAN_DUTY, sliceMs: 2 };
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A tracker of a folder of `files` files in `files / 100` folders, already scanned once. */
async function scannedTree(files: number): Promise<{ root: string; tracker: ChangeTracker }> {
  const dir = mkdtempSync(join(tmpdir(), 'mimic-rescan-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  for (let i = 0; i < files; i++) {
    const folder = join(root, `d${i % (files / 100)}`);
    if (i < files / 100) mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, `f${i}`), `file ${i}`);
  }
  const store = new Store(join(dir, 'mimic.db'));
  const images = new DatabaseImages(join(dir, 'images'));
  const xattrs = new XattrReader({ xattrs: true, acls: true }, () => {});
  const tracker = new ChangeTracker(
    root,
    store,
    () => false,
    () => ({ term: 1, node: 'n' }),
    { xattrs, images },
  );
  cleanups.push(() => {
    tracker.close();
    store.close();
  });
  await tracker.scan();
  return { root, tracker };
}

test('a rescan finds what no event said, is counted, and takes a share of the time', async () => {
  const { root, tracker } = await scannedTree(2_000);
  const counters = new NodeCounters();
  const rescans = new Rescanner(tracker, counters, 3_600_000, FINE);
  cleanups.push(() => rescans.stop());
  writeFileSync(join(root, 'd7', 'unseen'), 'made behind the watcher');
  const started = performance.now();
  const first = rescans.runOnce();
  await rescans.runOnce(); // one at a time: this one does nothing
  expect(counters.rescans).toBe(0);
  await first;
  const wall = (performance.now() - started) / 1000;
  expect(counters.rescans).toBe(1);
  expect(tracker.manifest.get('d7/unseen')?.size).toBe('made behind the watcher'.length);
  expect(counters.rescanSeconds).toBeGreaterThan(0);
  // Each slice of work is followed by a pause nine times as long (the last one excepted).
  expect(wall).toBeGreaterThan((counters.rescanSeconds / RESCAN_DUTY) * 0.5);
});

test('stop ends a rescan in its pause', async () => {
  const { tracker } = await scannedTree(2_000);
  const counters = new NodeCounters();
  const rescans = new Rescanner(tracker, counters, 3_600_000, FINE);
  const running = rescans.runOnce();
  await new Promise((r) => setTimeout(r, 30));
  const stopped = performance.now();
  rescans.stop();
  await running;
  expect(performance.now() - stopped).toBeLessThan(1000);
  expect(counters.rescans).toBe(1);
});
