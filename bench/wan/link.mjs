// The bench's side of a shaped link (shaping-proxy.mjs, run as a child of its own): start it in
// front of a port, switch shaping on and off, read and reset its byte counts.
import { fork } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./shaping-proxy.mjs', import.meta.url));

const live = new Set();
process.on('exit', () => {
  for (const link of live) link.child.kill('SIGKILL');
});

export class ShapedLink {
  /** A link to 127.0.0.1:`target` at `mbit` Mbit/s each way and `rttMs` round trip, unshaped at first. */
  static async start({ target, mbit = 20, rttMs = 50, logFile }) {
    mkdirSync(dirname(logFile), { recursive: true });
    const fd = openSync(logFile, 'a');
    const child = fork(SCRIPT, [String(target), String(mbit), String(rttMs)], {
      stdio: ['ignore', fd, fd, 'ipc'],
    });
    closeSync(fd);
    const link = new ShapedLink(child);
    live.add(link);
    link.port = await new Promise((resolve, reject) => {
      child.once('message', (m) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`shaping proxy exited (${code}); see ${logFile}`)));
    });
    child.on('message', (m) => {
      const waiting = link.pending.get(m.id);
      link.pending.delete(m.id);
      waiting?.(m);
    });
    return link;
  }

  constructor(child) {
    this.child = child;
    this.pending = new Map();
    this.next = 0;
  }

  #ask(cmd) {
    const id = ++this.next;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ id, ...cmd });
    });
  }

  /** Shaping on (the timed part) or off (set-up at loopback speed). */
  shape(on) {
    return this.#ask({ cmd: 'shape', on });
  }

  /** Bytes each way since the last reset, and their sum; `reset` starts the counts over. */
  async stats({ reset = false } = {}) {
    const { up, down } = await this.#ask({ cmd: 'stats', reset });
    return { up, down, total: up + down };
  }

  async stop() {
    live.delete(this);
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
