import { Worker } from 'node:worker_threads';
import { FanotifyError, mountsBelow, probeFanotify } from '@mimic/fsmeta';

/*
 * The folder watcher, in a thread of its own, of one of two kinds:
 *
 *   fanotify  fanotify-watcher-thread.ts: one mark on the whole filesystem (root only, Linux
 *             5.9 or later, a filesystem with file handles); no watch limit, no crawl
 *   inotify   tree-watcher-thread.ts: chokidar, one inotify watch per folder
 *
 * `auto` takes fanotify when the process is root, a fanotify watch of the root can be set up (a
 * probe: set one up and close it again) and nothing is mounted below the root; inotify
 * otherwise. `fanotify` asked for and not available is an error with code ERR_FANOTIFY, thrown
 * by the constructor. Both threads speak the same messages; a fanotify thread that fails to
 * start in `auto` (after a probe that passed) is replaced by an inotify one before `ready`.
 */

/** Which watcher to run: `auto` picks fanotify where it can. */
export type WatcherMode = 'auto' | 'fanotify' | 'inotify';
export type WatcherKind = 'fanotify' | 'inotify';

export const WATCHER_MODES: readonly WatcherMode[] = ['auto', 'fanotify', 'inotify'];

const THREADS: Record<WatcherKind, string> = {
  fanotify: './fanotify-watcher-thread.js',
  inotify: './tree-watcher-thread.js',
};

/** What the watcher thread is started with. */
export interface WatcherData {
  root: string;
  exclude: readonly string[];
  stateRel: string | null;
}

/**
 * What it reports: changed paths (forced: a content change, re-read even if the stat is
 * unchanged), readiness, errors, and `overflow`: events were lost, the whole tree needs a look.
 */
export type WatcherMessage =
  | { type: 'marks'; marks: [rel: string, forced: boolean][] }
  | { type: 'ready' }
  | { type: 'overflow' }
  | { type: 'error'; code: string | null; message: string };

export interface TreeWatcherHandlers {
  mark(rel: string, forced: boolean): void;
  error(err: { code: string | null; message: string }): void;
  /** Events were lost (a fanotify queue overflow): the tree needs a rescan. */
  rescan?(): void;
  /** A watcher thread starts: which, and why. */
  using?(choice: WatcherChoice): void;
}

/** Which watcher runs, and why. */
export interface WatcherChoice {
  kind: WatcherKind;
  /** Why not fanotify, when `auto` could not take it. */
  fallback: string | null;
  /** Mount points below the root that a fanotify watch does not see into (`fanotify` asked for). */
  unwatched: readonly string[];
}

/**
 * The watcher `mode` comes to for `root`. `auto` also keeps to inotify where something is
 * mounted below the root: a fanotify mark covers one filesystem, inotify follows every folder.
 */
export function chooseWatcher(mode: WatcherMode, root: string): WatcherChoice {
  const inotify = (fallback: string | null): WatcherChoice => ({ kind: 'inotify', fallback, unwatched: [] });
  if (mode === 'inotify') return inotify(null);
  if (mode === 'auto' && process.getuid?.() !== 0) return inotify('not root');
  const err = probeFanotify(root);
  if (err && mode === 'auto') return inotify(err.message);
  if (err) {
    const hint = err.errno === 'EPERM' ? ' (fanotify watches a whole filesystem: it needs root)' : '';
    throw new FanotifyError(`fanotify watcher not available: ${err.message}${hint}`, err.errno, {
      cause: err,
    });
  }
  const mounts = mountsBelow(root);
  if (mounts.length > 0 && mode === 'auto') {
    const some = mounts.slice(0, 3).join(', ') + (mounts.length > 3 ? ', ...' : '');
    return inotify(`${mounts.length} mount point(s) below the root: ${some}`);
  }
  return { kind: 'fanotify', fallback: null, unwatched: mounts };
}

export class TreeWatcher {
  #worker!: Worker;
  /** Resolves when the thread running now has ended. */
  #exited: Promise<void> = Promise.resolve();
  #kind: WatcherKind;
  readonly ready: Promise<void>;
  /** When `ready` resolved (Date.now()): every folder was watched by then. */
  readyAt = 0;
  #closed = false;

  constructor(data: WatcherData, handlers: TreeWatcherHandlers, mode: WatcherMode = 'inotify') {
    const chosen = chooseWatcher(mode, data.root);
    this.#kind = chosen.kind;
    this.ready = new Promise<void>((resolve, reject) => {
      const start = (choice: WatcherChoice) => {
        const { kind } = choice;
        this.#kind = kind;
        handlers.using?.(choice);
        const worker = new Worker(new URL(THREADS[kind], import.meta.url), { workerData: data });
        this.#worker = worker;
        this.#exited = new Promise((done) => worker.once('exit', () => done()));
        let started = false;
        let failed: string | null = null;
        worker.on('message', (msg: WatcherMessage) => {
          switch (msg.type) {
            case 'marks':
              for (const [rel, forced] of msg.marks) handlers.mark(rel, forced);
              break;
            case 'overflow':
              handlers.rescan?.();
              break;
            case 'ready':
              started = true;
              this.readyAt = Date.now();
              resolve();
              break;
            case 'error':
              if (!started && msg.code === 'ERR_FANOTIFY') {
                // The thread ends next: `auto` goes on with inotify, `fanotify` fails to start.
                failed = msg.message;
                if (mode === 'fanotify') reject(new FanotifyError(msg.message, 'EUNKNOWN'));
              } else handlers.error(msg);
              break;
          }
        });
        worker.once('error', (err) => {
          handlers.error({ code: (err as NodeJS.ErrnoException).code ?? null, message: err.message });
          reject(err);
        });
        worker.once('exit', (code) => {
          if (this.#closed) return;
          if (failed !== null)
            return mode === 'auto' ? start({ kind: 'inotify', fallback: failed, unwatched: [] }) : undefined;
          const message = `the folder watcher stopped (exit code ${code}); periodic rescans continue`;
          handlers.error({ code: null, message });
          reject(new Error(message));
        });
      };
      start(chosen);
    });
    this.ready.catch(() => {});
  }

  /** The watcher running now. */
  get kind(): WatcherKind {
    return this.#kind;
  }

  /** Stops watching; resolves once the thread has ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const worker = this.#worker;
    worker.postMessage('close');
    const timer = setTimeout(() => void worker.terminate(), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}
