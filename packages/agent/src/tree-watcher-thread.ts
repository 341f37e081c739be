import { join, relative, sep } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { watch } from 'chokidar';
import { makeExcluder } from './excludes.js';
import type { WatcherData, WatcherMessage } from './tree-watcher.js';

/*
 * The chokidar watcher, in a thread of its own. Watching a tree means a stat and an inotify
 * watch per path (seconds of work for 20,000 files, and again for every folder that changes),
 * none of which then holds up the journal and the senders on the main thread. Changed paths
 * go back in batches, one per turn of this thread's event loop.
 */

const port = parentPort!;
const { root, exclude, stateRel } = workerData as WatcherData;
const skip = makeExcluder(exclude, stateRel);
const relOf = (abs: string) => relative(root, abs).split(sep).join('/');

/** Bounded by what arrives in one turn of the loop: it is sent and emptied on the next. */
let marks: [rel: string, forced: boolean][] = [];
let flushing = false;

function post(msg: WatcherMessage): void {
  port.postMessage(msg);
}

function flush(): void {
  flushing = false;
  if (marks.length === 0) return;
  const batch = marks;
  marks = [];
  post({ type: 'marks', marks: batch });
}

function mark(abs: string, forced: boolean): void {
  const rel = relOf(abs);
  if (rel === '' || rel.startsWith('..')) return;
  marks.push([rel, forced]);
  if (!flushing) {
    flushing = true;
    setImmediate(flush);
  }
}

const watcher = watch(root, {
  ignoreInitial: true,
  followSymlinks: false,
  atomic: false,
  ignored: (abs: string, stats?: { isDirectory(): boolean }) => {
    const rel = relOf(abs);
    return rel !== '' && skip(rel, stats?.isDirectory() ?? false);
  },
});
for (const ev of ['add', 'addDir', 'change', 'unlink', 'unlinkDir'] as const) {
  watcher.on(ev, (abs: string) => mark(abs, true));
}
// chokidar drops attribute-only events (chmod, touch -a) and some link events (a dangling
// link, a link renamed over another); the raw inotify event still comes. Both candidate
// paths get a stat check against the manifest, which sees mode and ctime.
watcher.on('raw', (event, evPath, details) => {
  const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
  if ((event !== 'change' && event !== 'rename') || !watched || !evPath) return;
  mark(watched, false);
  mark(join(watched, evPath), false);
});
watcher.on('error', (e: unknown) => {
  const err = e as NodeJS.ErrnoException;
  post({ type: 'error', code: err.code ?? null, message: err.message });
});
watcher.once('ready', () => {
  flush();
  post({ type: 'ready' });
});
port.on('message', (msg: 'close') => {
  if (msg !== 'close') return;
  void watcher.close().then(() => {
    flush();
    port.close();
  });
});
