// The processes of the kill -9 loop (see chaos-cycle.mjs): spawning and tracking them, the
// waits, free ports, a seeded random source and `mimic status`.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rng } from '../../bench/lib/data.mjs';
import { cleanEnv, runNode, track } from './children.mjs';

export const MIMIC_BIN = fileURLToPath(new URL('../../packages/cli/bin/mimic.js', import.meta.url));
export const CHAOS_PRIMARY = fileURLToPath(new URL('./chaos-primary.mjs', import.meta.url));
export const KiB = 1024;
export const CONVERGE_MS = 45_000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The bench's seeded PRNG (mulberry32), shaped for the loop: every choice of a cycle follows from its seed. */
export function rngOf(seed) {
  const { next } = rng(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
  };
}

// waitFor here and snapshot and diffLines in chaos-tree.mjs are plain JavaScript counterparts of
// polling.ts and tree-snapshot.ts: bench/chaos.mjs loads these files under plain node (no
// TypeScript step), which cannot import those.
export async function waitFor(check, timeoutMs, what, details) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError ? `\nlast error: ${lastError.message}` : '';
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last}${details ? `\n${await details()}` : ''}`,
      );
    }
    await sleep(50);
  }
}

export async function freePorts(n) {
  const servers = [];
  try {
    const ports = [];
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', resolve);
      });
      ports.push(s.address().port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** A child process with its output kept; stdout lines can be read one at a time. */
export class Proc {
  constructor(label, args, { stdin = false } = {}) {
    this.label = label;
    this.stderr = '';
    this.child = track(
      spawn(process.execPath, args, {
        stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        env: cleanEnv(),
      }),
    );
    this.done = false;
    this.lines = [];
    this.waiters = [];
    let partial = '';
    this.child.stdout.setEncoding('utf8').on('data', (d) => {
      partial += d;
      for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w.resolve(line);
        else this.lines.push(line);
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (d) => {
      this.stderr += d;
    });
    this.child.stdin?.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.done = true;
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.label} exited`));
        resolve({ code, signal });
      });
    });
  }

  get running() {
    return !this.done;
  }

  nextLine(timeoutMs = 30_000) {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift());
    if (this.done) return Promise.reject(new Error(`${this.label} exited`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.label}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push({
        resolve: done,
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  /** Sends one command line, resolves with the answer line. */
  request(line, timeoutMs) {
    this.child.stdin.write(`${line}\n`);
    return this.nextLine(timeoutMs);
  }

  events(event) {
    const out = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const e = JSON.parse(line);
        if (e.event === event) out.push(e);
      } catch {
        // cut short by a kill
      }
    }
    return out;
  }

  async kill9() {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(graceMs = 5000) {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  tail(n = 15) {
    return `--- ${this.label} (${this.running ? `pid ${this.child.pid}` : 'exited'})\n${this.stderr
      .trimEnd()
      .split('\n')
      .slice(-n)
      .join('\n')}`;
  }
}

/** Every process a cycle starts; `stopAll` ends those still running (only these pids). */
export class ProcessSet {
  constructor() {
    this.procs = [];
  }

  start(label, args, opts) {
    const p = new Proc(label, args, opts);
    this.procs.push(p);
    return p;
  }

  describe() {
    return this.procs.map((p) => p.tail()).join('\n');
  }

  async stopAll() {
    await Promise.all(this.procs.map((p) => p.stop()));
  }
}

/** Starts chaos-primary.mjs (a library Primary driven over stdin); resolves once it serves. */
export async function startLibraryPrimary(procs, label, root, port, peers = []) {
  const proc = procs.start(label, [CHAOS_PRIMARY, root, String(port), peers.join(',')], { stdin: true });
  const ready = await proc.nextLine(20_000);
  if (!ready.startsWith('ready')) throw new Error(`${label}: ${ready}\n${proc.tail()}`);
  return proc;
}

export function runMimic(args, timeoutMs = 60_000) {
  return runNode(MIMIC_BIN, args, { timeoutMs });
}

export async function statusOf(dir) {
  const r = await runMimic(['status', '--state', join(dir, '.mimic'), '--json'], 10_000);
  if (r.code !== 0) throw new Error(`status of ${dir}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}
