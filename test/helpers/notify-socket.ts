import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { track } from './children.mjs';
import { waitFor } from './polling.js';

/*
 * The service manager's end of systemd's notify protocol, for tests: a datagram socket bound
 * by a small python3 script (Node has no Unix datagram sockets), which prints each datagram it
 * receives as one JSON line. Each message is kept with when it arrived here.
 */

const SCRIPT = [
  'import json, socket, sys',
  's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
  's.bind(sys.argv[1])',
  "print('bound', flush=True)",
  'while True: print(json.dumps(s.recv(4096).decode()), flush=True)',
].join('\n');

export interface Notification {
  /** Each `KEY=value` line of the datagram. */
  fields: Record<string, string>;
  /** performance.now() when it arrived. */
  at: number;
}

export class NotifySocket {
  readonly path: string;
  readonly received: Notification[] = [];
  readonly #child: ChildProcess;

  private constructor(path: string, child: ChildProcess) {
    this.path = path;
    this.#child = child;
  }

  /** Binds `dir`/notify.sock; resolves once it is bound. */
  static async bind(dir: string): Promise<NotifySocket> {
    const path = join(dir, 'notify.sock');
    const child = track(spawn('python3', ['-c', SCRIPT, path], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const socket = new NotifySocket(path, child);
    const bound = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the notify socket's python3 exited ${code}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'bound') return resolve();
        const fields: Record<string, string> = {};
        for (const kv of (JSON.parse(line) as string).split('\n')) {
          const eq = kv.indexOf('=');
          if (eq > 0) fields[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        socket.received.push({ fields, at: performance.now() });
      });
    });
    await bound;
    return socket;
  }

  /** The messages that carry `key` (READY, WATCHDOG, STATUS, ...). */
  with(key: string): Notification[] {
    return this.received.filter((n) => key in n.fields);
  }

  /** Waits for the `count`th message carrying `key`. */
  waitFor(key: string, timeoutMs: number, count = 1): Promise<Notification> {
    return waitFor(() => this.with(key)[count - 1], timeoutMs, `${count} notification(s) with ${key}`, {
      details: () => JSON.stringify(this.received.map((n) => n.fields)),
    });
  }

  close(): void {
    this.#child.kill('SIGKILL');
  }
}
