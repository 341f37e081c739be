import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MirrorStatus, PrimaryStatus } from '@mimic/agent';
import { type RunResult, runNode, spawnNode } from './children.mjs';
import { waitFor } from './polling.js';
import { type Tree, waitConverged } from './tree-snapshot.js';

export type { MirrorLinkStatus, MirrorStatus, PrimaryStatus } from '@mimic/agent';
export type { RunResult } from './children.mjs';
export { sleep, waitFor } from './polling.js';

/*
 * Real `mimic` processes for failover tests: nodes that listen on ports chosen up front (a
 * mirror's --primary list names every node, itself included, so each URL must be known before
 * anything starts), the CLI's one-shot commands, and trees compared across nodes.
 *
 * A FailoverCluster owns every process and folder a test creates. `cleanup()` (call it from
 * afterEach, so it runs whether the test passed or not) sends SIGTERM to each process it
 * spawned that still runs, SIGKILL after a grace period, then removes the folders. Only pids
 * spawned here are ever signalled.
 */

export const MIMIC_BIN = fileURLToPath(new URL('../../packages/cli/bin/mimic.js', import.meta.url));
export const PROMOTE_BIN = fileURLToPath(
  new URL('../../packages/cli/bin/promote-mirror.js', import.meta.url),
);

/** `n` distinct free ports on 127.0.0.1 (all bound at once, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      ports.push((server.address() as { port: number }).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export function urlOf(port: number): string {
  return `ws://127.0.0.1:${port}`;
}

/** Runs `node <script> <args>` to completion (SIGKILL after `timeoutMs`); never rejects on failure. */
export function runScript(script: string, args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return runNode(script, args, { timeoutMs });
}

/** `mimic <args>`, run to completion. */
export function runMimic(args: readonly string[], timeoutMs?: number): Promise<RunResult> {
  return runScript(MIMIC_BIN, args, timeoutMs);
}

/** `mimic status --state <dir> --json`, parsed; throws with the command's stderr when it fails. */
export async function statusOf<S = PrimaryStatus | MirrorStatus>(stateDir: string): Promise<S> {
  const r = await runMimic(['status', '--state', stateDir, '--json']);
  if (r.code !== 0) throw new Error(`mimic status --state ${stateDir}: exit ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as S;
}

export interface LogLine {
  event: string;
  [field: string]: unknown;
}

/** One running agent process, its stderr (JSON log lines) kept for assertions and failure reports. */
export class NodeProcess {
  readonly label: string;
  readonly root: string;
  readonly stateDir: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  #done = false;

  constructor(label: string, root: string, args: readonly string[], stateDir = join(root, '.mimic')) {
    this.label = label;
    this.root = root;
    this.stateDir = stateDir;
    this.child = spawnNode(MIMIC_BIN, args);
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.#done = true;
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean {
    return !this.#done;
  }

  events(event?: string): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const parsed = JSON.parse(line) as LogLine;
        if (!event || parsed.event === event) out.push(parsed);
      } catch {
        // a line cut short by a kill
      }
    }
    return out;
  }

  /** Waits for the `count`-th log line of `event`. */
  waitForEvent(event: string, timeoutMs = 20_000, count = 1): Promise<LogLine> {
    return waitFor(
      () => {
        if (!this.running) throw new Error(`${this.label} exited`);
        return this.events(event)[count - 1];
      },
      timeoutMs,
      `${this.label} to log "${event}" (${count})`,
      () => this.describe(),
    );
  }

  status<S = PrimaryStatus | MirrorStatus>(): Promise<S> {
    return statusOf<S>(this.stateDir);
  }

  async kill9(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, SIGKILL if still running after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  describe(lines = 30): string {
    const tail = this.stderr.trimEnd().split('\n').slice(-lines).join('\n');
    return `--- ${this.label} (${this.running ? `pid ${this.child.pid}` : 'exited'}) ${this.root}\n${tail}`;
  }
}

export interface StartPrimary {
  port: number;
  peers?: readonly string[];
  state?: string;
  /** Wait for `ready` (default) or only for `listening`. */
  wait?: 'ready' | 'listening';
}

export interface StartMirror {
  primaries: readonly string[];
  /** Where it serves once promoted. */
  port?: number;
  onPromote?: string;
  state?: string;
  /** Wait for its first `connected` (default) or not at all. */
  wait?: 'connected' | 'spawned';
}

/** The processes and folders of one test. */
export class FailoverCluster {
  readonly nodes: NodeProcess[] = [];
  readonly #dirs: string[] = [];

  async tempDir(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `mimic-failover-${label}-`));
    this.#dirs.push(dir);
    return dir;
  }

  async primary(label: string, root: string, o: StartPrimary): Promise<NodeProcess> {
    const args = ['primary', root, '--listen', `127.0.0.1:${o.port}`, '--init'];
    if (o.peers?.length) args.push('--peers', o.peers.join(','));
    if (o.state) args.push('--state', o.state);
    const node = new NodeProcess(label, root, args, o.state);
    this.nodes.push(node);
    await node.waitForEvent(o.wait ?? 'ready');
    return node;
  }

  async mirror(label: string, root: string, o: StartMirror): Promise<NodeProcess> {
    const args = ['mirror', root, '--primary', o.primaries.join(',')];
    if (o.port !== undefined) args.push('--listen', `127.0.0.1:${o.port}`);
    if (o.onPromote) args.push('--on-promote', o.onPromote);
    if (o.state) args.push('--state', o.state);
    const node = new NodeProcess(label, root, args, o.state);
    this.nodes.push(node);
    if ((o.wait ?? 'connected') === 'connected') await node.waitForEvent('connected');
    return node;
  }

  /** Every node's status (where it answers) and log tail, for failure messages. */
  async report(): Promise<string> {
    const out: string[] = [];
    for (const n of this.nodes) {
      if (!n.running) continue;
      const st = await n.status().then(
        (s) => JSON.stringify(s),
        (err: Error) => err.message,
      );
      out.push(`${n.label}: ${st}`);
    }
    return `${out.join('\n')}\n${this.nodes.map((n) => n.describe()).join('\n')}`;
  }

  /** Waits until `b`'s tree equals `a`'s; returns the tree. */
  converged(a: string, b: string, timeoutMs = 20_000): Promise<Tree> {
    return waitConverged(a, b, { timeoutMs, details: () => this.report() });
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    for (const dir of this.#dirs) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}
