import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { FAN, type FanotifyBatch, FanotifyWatch } from '@mimic/fsmeta';
import { makeExcluder } from '../node/excludes.js';
import type { WatcherData, WatcherMessage } from './tree-watcher.js';

/*
 * The fanotify watcher, in a thread of its own: one mark on the filesystem that holds the root
 * covers every folder at once, so 'ready' goes out as soon as it is in place, with no crawl.
 * The thread then loops on blocking reads of at most READ_WAIT_MS each, and between two reads
 * looks for the 'close' message without its event loop (which the loop never yields to).
 *
 * The mark sees the whole filesystem; the addon keeps only paths under the root, and the
 * excluded ones (the state folder, --exclude) are dropped here. A content change (a write, a
 * close after writing) re-reads the file even if its stat is unchanged; anything else done to
 * an entry (made, removed, moved, chmod) gets a stat check of the entry and of its folder, as
 * the inotify thread marks them. Lost events (the kernel's queue overflowed) ask for a rescan.
 */

const port: MessagePort = parentPort!;
const { root, exclude, stateRel } = workerData as WatcherData;
const skip = makeExcluder(exclude, stateRel);

/** Longest wait in one read: how late a 'close' can be seen. */
const READ_WAIT_MS = 200;
/**
 * Pause after a read that took events (of the root or not). 1 GiB written elsewhere on the
 * filesystem in 64 KiB writes woke this thread 13,000 times and cost it 0.2 s of CPU without
 * it, 0.1 s with it; it adds at most this much latency.
 */
const COALESCE_MS = 10;
const pause = new Int32Array(new SharedArrayBuffer(4));
/** Most paths in one 'marks' message. */
const MAX_MARKS = 4096;
const CONTENT = FAN.MODIFY | FAN.CLOSE_WRITE;
const ENTRY = FAN.CREATE | FAN.DELETE | FAN.MOVED_FROM | FAN.MOVED_TO | FAN.ATTRIB | FAN.MOVE_SELF;

function post(msg: WatcherMessage): void {
  port.postMessage(msg);
}

/** Paths of this read, each with whether its content is to be re-read. */
const marks = new Map<string, boolean>();

function flush(): void {
  if (marks.size === 0) return;
  post({ type: 'marks', marks: [...marks] });
  marks.clear();
}

function mark(rel: string, forced: boolean, isDir: boolean): void {
  if (rel === '' || skip(rel, isDir)) return;
  marks.set(rel, (marks.get(rel) ?? false) || forced);
  if (marks.size >= MAX_MARKS) flush();
}

function take(batch: FanotifyBatch): void {
  const { paths, masks } = batch;
  for (let i = 0; i < paths.length; i++) {
    const rel = paths[i]!;
    const mask = masks[i]!;
    const isDir = (mask & FAN.ONDIR) !== 0;
    if (mask & ENTRY) {
      const slash = rel.lastIndexOf('/');
      if (slash > 0) mark(rel.slice(0, slash), false, true);
      mark(rel, (mask & CONTENT) !== 0, isDir);
    } else if (mask & CONTENT) mark(rel, true, isDir);
  }
  if (batch.overflow) post({ type: 'overflow' });
  flush();
}

function closing(): boolean {
  for (let msg = receiveMessageOnPort(port); msg; msg = receiveMessageOnPort(port))
    if (msg.message === 'close') return true;
  return false;
}

function run(): void {
  let watch: FanotifyWatch;
  try {
    watch = new FanotifyWatch(root);
  } catch (err) {
    const e = err as { code?: string; message: string };
    post({ type: 'error', code: e.code ?? null, message: e.message });
    return;
  }
  post({ type: 'ready' });
  try {
    while (!closing()) {
      const batch = watch.read(READ_WAIT_MS);
      take(batch);
      // The kernel merges events of one file while they queue: a pause after a busy read turns
      // a writer's thousands of events (anywhere on the filesystem) into a few.
      if (batch.events > 0) Atomics.wait(pause, 0, 0, COALESCE_MS);
    }
  } catch (err) {
    const e = err as { code?: string; message: string };
    post({ type: 'error', code: e.code ?? null, message: `the fanotify watcher stopped: ${e.message}` });
  } finally {
    watch.close();
    flush();
  }
}

run();
port.close();
