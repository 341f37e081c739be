import { Worker } from 'node:worker_threads';

/** What the watcher thread is started with. */
export interface WatcherData {
  root: string;
  exclude: readonly string[];
  stateRel: string | null;
}

/** What it reports: changed paths (forced: a watcher event, not only a raw one), readiness, errors. */
export type WatcherMessage =
  | { type: 'marks'; marks: [rel: string, forced: boolean][] }
  | { type: 'ready' }
  | { type: 'error'; code: string | null; message: string };

export interface TreeWatcherHandlers {
  mark(rel: string, forced: boolean): void;
  error(err: { code: string | null; message: string }): void;
}

/** The folder watcher (chokidar), run in its own thread; see tree-watcher-thread.ts. */
export class TreeWatcher {
  readonly #worker: Worker;
  readonly ready: Promise<void>;
  /** When `ready` resolved (Date.now()): every folder was watched by then. */
  readyAt = 0;
  #closed = false;

  constructor(data: WatcherData, handlers: TreeWatcherHandlers) {
    this.#worker = new Worker(new URL('./tree-watcher-thread.js', import.meta.url), { workerData: data });
    this.ready = new Promise<void>((resolve, reject) => {
      this.#worker.on('message', (msg: WatcherMessage) => {
        if (msg.type === 'marks') for (const [rel, forced] of msg.marks) handlers.mark(rel, forced);
        else if (msg.type === 'ready') {
          this.readyAt = Date.now();
          resolve();
        } else handlers.error(msg);
      });
      this.#worker.once('error', (err) => {
        handlers.error({ code: (err as NodeJS.ErrnoException).code ?? null, message: err.message });
        reject(err);
      });
      this.#worker.once('exit', (code) => {
        if (this.#closed) return;
        const message = `the folder watcher stopped (exit code ${code}); periodic rescans continue`;
        handlers.error({ code: null, message });
        reject(new Error(message));
      });
    });
    this.ready.catch(() => {});
  }

  /** Stops watching; resolves once the thread has ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.postMessage('close');
    const timer = setTimeout(() => void this.#worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }
}
