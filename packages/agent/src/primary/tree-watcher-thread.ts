import { readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { FSWatcher } from 'chokidar';
import { makeExcluder } from '../node/excludes.js';
import type { WatcherData, WatcherMessage } from './tree-watcher.js';

/*
 * The chokidar watcher, in a thread of its own. chokidar watches folders only: files are
 * "ignored" (no watch and no stat each, which for 20,000 files took 2 s and one inotify watch
 * apiece), and their changes arrive as the raw inotify events of the folder that holds them,
 * as lsyncd and Syncthing watch. Changed paths go back in batches, one per turn of this
 * thread's event loop.
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

/** When a new folder's entries are listed again (after its watch is surely in place). */
const RELIST_NEW_DIR_MS = [50, 1000, 5000];

function markEntries(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // gone again: its parent's events say so
  }
  for (const name of names) mark(join(dir, name), false);
}

/** One entry of a folder listing, as chokidar's lister hands it to the filters below. */
type ListedEntry = { stats?: unknown; dirent?: unknown };
type EntryFilter = (entry: ListedEntry) => boolean;
type ListingOptions = { fileFilter: EntryFilter; directoryFilter: EntryFilter };
type Lister = (dir: string, options: ListingOptions) => unknown;

/**
 * chokidar lists a folder with an lstat of every entry in it, only to ask each whether it is a
 * folder or a link, which the listing's own entry types already answer: for 20,000 files that
 * was half a second of CPU. Its lister takes options that override `alwaysStat`, so the
 * listing here asks for entry types instead and hands them on where chokidar reads `stats`.
 * Every entry that is not a folder is ignored (see `ignored` below), so the file filter turns
 * them down at once rather than through chokidar's path checks, a tenth of a second of CPU
 * for 20,000 files. A chokidar without that lister keeps its own.
 */
function listByEntryType(w: FSWatcher): void {
  const inner = w as unknown as { _readdirp?: Lister };
  const list = inner._readdirp;
  if (typeof list !== 'function') return;
  const typed =
    (filter: EntryFilter): EntryFilter =>
    (entry) => {
      entry.stats ??= entry.dirent;
      return filter(entry);
    };
  inner._readdirp = (dir, options) =>
    list.call(w, dir, {
      ...options,
      alwaysStat: false,
      fileFilter: () => false,
      directoryFilter: typed(options.directoryFilter),
    } as ListingOptions);
}

const watcher = new FSWatcher({
  ignoreInitial: true,
  followSymlinks: false,
  atomic: false,
  ignored: (abs: string, stats?: { isDirectory(): boolean }) => {
    // Known not to be a folder: a file or link, seen through its folder's events below. (Asked
    // first: chokidar asks for every entry of every folder.)
    if (stats && !stats.isDirectory()) return true;
    const rel = relOf(abs);
    if (rel === '') return false;
    return skip(rel, stats?.isDirectory() ?? false);
  },
});
listByEntryType(watcher);
watcher.add(root);
watcher.on('unlinkDir', (abs: string) => mark(abs, true));
watcher.on('addDir', (abs: string) => {
  mark(abs, true);
  // chokidar reports a new folder before its watch is in place: what is created in it until
  // then has no event of its own, so the folder's entries are listed again once it is.
  for (const ms of RELIST_NEW_DIR_MS) setTimeout(() => markEntries(abs), ms).unref();
});
// Every event of a watched folder, unfiltered: `change` (content or attributes) of an entry
// re-reads its content, since a rewrite can keep size and mtime; `rename` (created, deleted,
// moved in or out) gets a stat check against the manifest, as does the folder itself.
watcher.on('raw', (event, evPath, details) => {
  const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
  if ((event !== 'change' && event !== 'rename') || !watched || !evPath) return;
  mark(watched, false);
  mark(join(watched, evPath), event === 'change');
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
