import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MirrorStatus, PrimaryStatus } from '@mimic/agent';
import { test as base } from 'vitest';
import { cleanEnv, type ExitInfo, type RunResult, runNode, spawnNode, track } from './children.mjs';
import { waitFor } from './polling.js';
import { type ConvergeOptions, type Tree, waitConverged } from './tree-snapshot.js';

/** What `mimic status --json` prints: the agent's own status object. */
export type { MirrorLinkStatus, MirrorStatus, PrimaryStatus } from '@mimic/agent';
export type { ExitInfo, RunResult } from './children.mjs';
export { sleep, waitFor } from './polling.js';

/*
 * Real `mimic primary` and `mimic mirror` processes for end-to-end tests.
 *
 * A Cluster owns every process and temp folder one test creates; the `test` exported here gives
 * each test a fresh one and tears it down afterwards (resume stopped processes, SIGTERM, SIGKILL
 * after a grace period, then remove the folders), whether the test passed or not. Only the pids
 * spawned here are ever signalled.
 */

export const MIMIC = fileURLToPath(new URL('../../packages/cli/bin/mimic.js', import.meta.url));

/** Numeric credentials an agent process runs with instead of this test's. */
export interface ProcessUser {
  uid: number;
  gid: number;
}

/**
 * `node mimic.js <args>`, as `user` when given: spawn sets the gid, drops the supplementary
 * groups and sets the uid before exec, so the agent has only those ids (this process must be root).
 */
function spawnAgent(args: readonly string[], env: NodeJS.ProcessEnv, user?: ProcessUser): ChildProcess {
  if (!user) return spawnNode(MIMIC, args, env);
  return track(
    spawn(process.execPath, [MIMIC, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...cleanEnv(), ...env },
      uid: user.uid,
      gid: user.gid,
    }),
  );
}

export interface LogLine {
  event: string;
  [field: string]: unknown;
}

/** Runs `mimic <args>` to completion (killed after `timeoutMs`); never rejects on a non-zero exit. */
export function runMimic(
  args: readonly string[],
  { timeoutMs = 20_000, cwd }: { timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return runNode(MIMIC, args, { timeoutMs, ...(cwd ? { cwd } : {}) });
}

/** `mimic status --state <stateDir> --json`, parsed; throws with the command's stderr if it fails. */
export async function statusJson<S = PrimaryStatus | MirrorStatus>(stateDir: string): Promise<S> {
  const r = await runMimic(['status', '--state', stateDir, '--json']);
  if (r.code !== 0)
    throw new Error(`mimic status --state ${stateDir} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as S;
}

/** One running `mimic` agent, with its stderr kept for assertions and failure messages. */
export class Agent {
  readonly role: 'primary' | 'mirror';
  readonly root: string;
  readonly stateDir: string;
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  /** ws:// URL a primary listens on (known once it logged `listening`). */
  url = '';
  port = 0;
  stderr = '';
  stopped = false;
  #exit: ExitInfo | null = null;

  constructor(
    role: 'primary' | 'mirror',
    root: string,
    stateDir: string,
    args: readonly string[],
    { env = {}, user }: { env?: NodeJS.ProcessEnv | undefined; user?: ProcessUser | undefined } = {},
  ) {
    this.role = role;
    this.root = root;
    this.stateDir = stateDir;
    this.child = spawnAgent(args, env, user);
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.#exit === null;
  }

  /** Parsed JSON log lines, optionally only those of one event. */
  events(event?: string): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const parsed = JSON.parse(line) as LogLine;
        if (!event || parsed.event === event) out.push(parsed);
      } catch {
        // a line cut by a kill: ignore
      }
    }
    return out;
  }

  async waitForEvent(event: string, timeoutMs: number, count = 1): Promise<LogLine> {
    return waitFor(
      () => {
        if (!this.running) throw new Error(`${this.role} exited ${JSON.stringify(this.#exit)}`);
        return this.events(event)[count - 1];
      },
      timeoutMs,
      `${this.role} to log "${event}"`,
      { intervalMs: 20, details: () => this.describe() },
    );
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGSTOP: the process stays, frozen, until `resume`. */
  pause(): void {
    this.signal('SIGSTOP');
    this.stopped = true;
  }

  resume(): void {
    this.signal('SIGCONT');
    this.stopped = false;
  }

  /** SIGTERM (a clean close), SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<ExitInfo> {
    if (!this.running) return this.#exit!;
    if (this.stopped) this.resume();
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }

  async kill9(): Promise<ExitInfo> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** Peak resident set size in bytes (VmHWM), read while the process is alive. */
  async peakRss(): Promise<number> {
    const text = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(text);
    if (!m) throw new Error(`no VmHWM in /proc/${this.pid}/status`);
    return Number(m[1]) * 1024;
  }

  /** The run state letter from /proc/<pid>/stat ('T' when stopped). */
  async procState(): Promise<string> {
    const text = await readFile(`/proc/${this.pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ', 1)[0]!;
  }

  async status<S extends PrimaryStatus | MirrorStatus = PrimaryStatus | MirrorStatus>(): Promise<S> {
    return statusJson<S>(this.stateDir);
  }

  describe(lines = 40): string {
    const tail = this.stderr.trimEnd().split('\n').slice(-lines).join('\n');
    const state = this.running ? `pid ${this.pid}` : `exited ${JSON.stringify(this.#exit)}`;
    return `--- ${this.role} ${this.root} (${state}) stderr:\n${tail}`;
  }
}

export interface PrimaryOptions {
  port?: number;
  state?: string;
  exclude?: readonly string[];
  rescanSeconds?: number;
  /** Pass --init (the default): serve a folder without a marker as a new folder. */
  init?: boolean;
  /** More command-line arguments (for example --token-file). */
  args?: readonly string[];
  /** More environment variables (for example MIMIC_CRASH_AT). */
  env?: NodeJS.ProcessEnv;
}

export interface MirrorOptions {
  state?: string;
  /** Wait until it has connected (default) or only until it was spawned. */
  wait?: 'connected' | 'spawned';
  /** More command-line arguments (for example --token-file). */
  args?: readonly string[];
  /**
   * Run the agent with these ids instead of root's. Its folder (and `state`) must be writable by
   * them and the repository readable; the caller chowns what it created.
   */
  user?: ProcessUser;
}

const START_TIMEOUT_MS = 20_000;

export interface Pair {
  primaryDir: string;
  mirrorDir: string;
  primary: Agent;
  mirror: Agent;
}

/** The processes and temp folders of one test. */
export class Cluster {
  readonly agents: Agent[] = [];
  readonly dirs: string[] = [];

  /** A new empty folder under the system temp folder, removed at teardown. */
  async tempDir(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `mimic-e2e-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** Starts `mimic primary` and waits until it has scanned its folder and listens. */
  async primary(root: string, opts: PrimaryOptions = {}): Promise<Agent> {
    const args = ['primary', root, '--listen', `127.0.0.1:${opts.port ?? 0}`];
    if (opts.state) args.push('--state', opts.state);
    for (const g of opts.exclude ?? []) args.push('--exclude', g);
    if (opts.rescanSeconds !== undefined) args.push('--rescan', String(opts.rescanSeconds));
    if (opts.init !== false) args.push('--init');
    args.push(...(opts.args ?? []));
    const agent = new Agent('primary', root, opts.state ?? join(root, '.mimic'), args, { env: opts.env });
    this.agents.push(agent);
    const listening = await agent.waitForEvent('listening', START_TIMEOUT_MS);
    agent.url = String(listening.url);
    agent.port = Number(new URL(agent.url).port);
    await agent.waitForEvent('ready', START_TIMEOUT_MS);
    return agent;
  }

  /** Starts `mimic mirror` following `primaries`; by default waits for its first connection. */
  async mirror(
    root: string,
    primaries: string | readonly string[],
    opts: MirrorOptions = {},
  ): Promise<Agent> {
    const urls = typeof primaries === 'string' ? primaries : primaries.join(',');
    const args = ['mirror', root, '--primary', urls];
    if (opts.state) args.push('--state', opts.state);
    args.push(...(opts.args ?? []));
    const agent = new Agent('mirror', root, opts.state ?? join(root, '.mimic'), args, { user: opts.user });
    this.agents.push(agent);
    if ((opts.wait ?? 'connected') === 'connected') await agent.waitForEvent('connected', START_TIMEOUT_MS);
    return agent;
  }

  /** A primary on a new folder and one mirror of it, connected. */
  async pair(opts: PrimaryOptions & { prepare?: (primaryDir: string) => Promise<void> } = {}): Promise<Pair> {
    const primaryDir = await this.tempDir('primary');
    const mirrorDir = await this.tempDir('mirror');
    await opts.prepare?.(primaryDir);
    const primary = await this.primary(primaryDir, opts);
    const mirror = await this.mirror(mirrorDir, primary.url);
    return { primaryDir, mirrorDir, primary, mirror };
  }

  /** Waits until `mirrorDir` equals `primaryDir`; the timeout message carries every agent's status and log. */
  converged(primaryDir: string, mirrorDir: string, opts: ConvergeOptions = {}): Promise<Tree> {
    return waitConverged(primaryDir, mirrorDir, { ...opts, details: () => this.report() });
  }

  /** Each running agent's status (stopped ones are skipped: they cannot answer), then every log. */
  async report(): Promise<string> {
    const lines: string[] = [];
    for (const a of this.agents) {
      if (!a.running || a.stopped) continue;
      const st = await a.status().then(
        (s) => JSON.stringify(s),
        (err: Error) => err.message,
      );
      lines.push(`${a.role} ${a.root}: ${st}`);
    }
    return `${lines.join('\n')}\n${this.describe()}`;
  }

  describe(): string {
    return this.agents.map((a) => a.describe()).join('\n');
  }

  /** Stops every process this test started, then removes its folders. */
  async cleanup(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop(5_000)));
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * `test` with a `cluster` fixture: a fresh Cluster per test, torn down after it whatever the
 * outcome; the agents' logs are printed when the test fails. Safe for concurrent tests.
 */
export const test = base.extend<{ cluster: Cluster }>({
  cluster: async ({ onTestFailed }, use) => {
    const cluster = new Cluster();
    onTestFailed(() => {
      console.error(cluster.describe());
    });
    try {
      await use(cluster);
    } finally {
      await cluster.cleanup();
    }
  },
});
