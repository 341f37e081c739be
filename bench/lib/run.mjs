// Running and timing commands, long-lived child processes, ports, settling the disk.
import { execFile, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const REPO_ROOT = resolve(BENCH_DIR, '..');
export const WORK_ROOT = join(BENCH_DIR, '.work');

/**
 * Benchmark knobs come from the environment (BENCH_RUNS, BENCH_SETTLE_MS, BENCH_AFTER_CLEAN_UP_MS,
 * BENCH_MIMIC_BIN).
 */
const env = (name) => process.env[name];

/** The CLI under test; BENCH_MIMIC_BIN points elsewhere (e.g. an installed release to compare). */
export const MIMIC_BIN = env('BENCH_MIMIC_BIN') || join(REPO_ROOT, 'node_modules', '.bin', 'mimic');
const GNU_TIME = '/usr/bin/time';

export const now = () => performance.now();
export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Runs per workload: BENCH_RUNS wins over the workload's default. */
export function runsFromEnv(fallback) {
  const n = Number.parseInt(env('BENCH_RUNS') ?? '', 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/**
 * Flush dirty pages and pause, so the previous step's writes and discards do not land on the next
 * timed step. BENCH_SETTLE_MS overrides the pause (default 3 s).
 */
export async function settle(ms) {
  execFileSync('sync');
  await sleep(ms ?? msFromEnv('BENCH_SETTLE_MS', 3000));
}

/** A span in ms from the environment variable `name` (0 or more), else `fallback`. */
function msFromEnv(name, fallback) {
  const ms = Number.parseInt(env(name) ?? '', 10);
  return Number.isFinite(ms) && ms >= 0 ? ms : fallback;
}

/**
 * When a run last removed its work files. Creating files here runs several times slower for
 * minutes after a large delete (W2 two minutes after the previous run's clean-up: rsync 12-13 s
 * instead of 2 s), so a run that starts within AFTER_CLEAN_UP_MS of one waits the rest out.
 */
const CLEANED_AT = join(BENCH_DIR, '.cleaned-at');
const AFTER_CLEAN_UP_MS = 240_000;

/**
 * Removes a run's work folder (and the work root once empty); `manyFiles` notes when, for
 * `settleAfterCleanUp` in the next run.
 */
export function removeWork(dir, { manyFiles = false } = {}) {
  rmSync(dir, { recursive: true, force: true });
  if (existsSync(WORK_ROOT) && readdirSync(WORK_ROOT).length === 0) rmSync(WORK_ROOT, { recursive: true });
  if (manyFiles) writeFileSync(CLEANED_AT, `${Date.now()}\n`);
}

/**
 * Waits until AFTER_CLEAN_UP_MS have passed since the last `removeWork` of many files (in this
 * run or an earlier one); BENCH_AFTER_CLEAN_UP_MS overrides the span (0: no wait).
 */
export async function settleAfterCleanUp() {
  let at;
  try {
    at = Number.parseInt(readFileSync(CLEANED_AT, 'utf8'), 10);
  } catch {
    return; // no run has cleaned up here yet
  }
  const wait = at + msFromEnv('BENCH_AFTER_CLEAN_UP_MS', AFTER_CLEAN_UP_MS) - Date.now();
  if (!(wait > 0)) return;
  const ago = Math.round((Date.now() - at) / 1000);
  console.log(
    `waiting ${Math.ceil(wait / 1000)} s: bench files were removed ${ago} s ago, and creating files ` +
      'right after a large delete runs several times slower here (BENCH_AFTER_CLEAN_UP_MS=0 skips this)',
  );
  await sleep(wait);
}

let gnuTime;
/** Whether `/usr/bin/time -f %M` works here (GNU time). */
export function haveGnuTime() {
  if (gnuTime === undefined) {
    try {
      execFileSync(GNU_TIME, ['-f', '%M', 'true'], { stdio: 'ignore' });
      gnuTime = true;
    } catch {
      gnuTime = false;
    }
  }
  return gnuTime;
}

/** argv for running the mimic CLI with this Node. */
export const mimicArgv = (...args) => [process.execPath, MIMIC_BIN, ...args];

/**
 * Run a command to completion and time it (wall ms, spawn to exit). Peak RSS in KiB comes from
 * GNU time when present. The command runs in its own process group so a timeout can end all of it.
 * Resolves with { ms, rssKiB, code, signal, timedOut, stdout, stderr }; never rejects on failure.
 */
export function runTimed(argv, { timeoutMs = 600_000, cwd, rss = true } = {}) {
  const useTime = rss && haveGnuTime();
  const rssFile = useTime ? join(WORK_ROOT, `rss-${process.pid}-${Math.random().toString(36).slice(2)}`) : '';
  if (useTime) mkdirSync(WORK_ROOT, { recursive: true });
  const full = useTime ? [GNU_TIME, '-f', '%M', '-o', rssFile, ...argv] : argv;
  hookExit();
  return new Promise((done) => {
    const out = [];
    const err = [];
    let timedOut = false;
    const t0 = now();
    const child = spawn(full[0], full.slice(1), { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const entry = { pid: child.pid };
    live.add(entry);
    let ms = 0;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('exit', () => {
      ms = now() - t0;
    });
    child.on('error', (e) => err.push(Buffer.from(String(e))));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(entry);
      let rssKiB = null;
      if (useTime) {
        try {
          const n = Number.parseInt(readFileSync(rssFile, 'utf8').trim().split('\n').pop(), 10);
          rssKiB = Number.isFinite(n) ? n : null;
        } catch {}
        rmSync(rssFile, { force: true });
      }
      // GNU time reports the command's own exit status as its own.
      done({
        ms: ms || now() - t0,
        rssKiB,
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
  });
}

/** Like runTimed, but throws when the command fails or times out. */
export async function runChecked(argv, opts) {
  const r = await runTimed(argv, opts);
  if (r.timedOut) throw new Error(`timed out after ${opts?.timeoutMs ?? 600_000} ms: ${argv.join(' ')}`);
  if (r.code !== 0) {
    throw new Error(`exit ${r.code ?? r.signal}: ${argv.join(' ')}\n${tail(r.stderr || r.stdout)}`);
  }
  return r;
}

function killGroup(pid, signal) {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {}
}

const tail = (text, lines = 15) => text.trimEnd().split('\n').slice(-lines).join('\n');

const live = new Set();
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  const endAll = () => {
    for (const c of live) killGroup(c.pid, 'SIGKILL');
  };
  process.on('exit', endAll);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      endAll();
      process.exit(130);
    });
  }
}

/**
 * A long-lived child (primary, mirror, daemon) with stdout and stderr going to a log file.
 * It gets its own process group; stop() ends that group only.
 */
export class Child {
  constructor(name, argv, { logFile, cwd } = {}) {
    hookExit();
    this.name = name;
    this.argv = argv;
    this.logFile = logFile;
    mkdirSync(dirname(logFile), { recursive: true });
    const fd = openSync(logFile, 'a');
    this.proc = spawn(argv[0], argv.slice(1), { cwd, detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.pid = this.proc.pid;
    this.exited = new Promise((done) => this.proc.on('exit', (code, signal) => done({ code, signal })));
    this.proc.on('error', () => {});
    live.add(this);
  }

  get running() {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Throw with the end of the log when the process has already ended. */
  assertRunning() {
    if (this.running) return;
    const status = this.proc.exitCode ?? this.proc.signalCode;
    throw new Error(`${this.name} exited (${status}): ${this.argv.join(' ')}\n${this.logTail()}`);
  }

  logTail(lines = 15) {
    try {
      return tail(readFileSync(this.logFile, 'utf8'), lines);
    } catch {
      return '';
    }
  }

  async stop(graceMs = 10_000) {
    if (this.running) {
      killGroup(this.pid, 'SIGTERM');
      const t = setTimeout(() => killGroup(this.pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    killGroup(this.pid, 'SIGKILL');
    live.delete(this);
  }
}

/** Peak resident set (VmHWM) of a live process, in KiB. */
export function vmHwmKiB(pid) {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : null;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux, asked once). */
let clockTicks = null;
function ticksPerSecond() {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * CPU time (user + system, in ms) that live process `pid` ('self' for this one) has used; with
 * `children`, what its children that it has waited for used instead.
 */
export function cpuMs(pid, { children = false } = {}) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // After "pid (name) ", fields run from 3 (state): utime 14, stime 15, cutime 16, cstime 17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [user, sys] = children ? [f[13], f[14]] : [f[11], f[12]];
  return ((Number(user) + Number(sys)) * 1000) / ticksPerSecond();
}

/** Resolves with `read()` once two readings `intervalMs` apart agree (at most `timeoutMs`). */
export async function whenSteady(read, { intervalMs = 200, timeoutMs = 10_000 } = {}) {
  const end = now() + timeoutMs;
  let last = read();
  for (;;) {
    await sleep(intervalMs);
    const cur = read();
    if (cur === last || now() > end) return cur;
    last = cur;
  }
}

export function freePort() {
  return new Promise((done, fail) => {
    const srv = net.createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => done(port));
    });
  });
}

/** Wait until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, { timeoutMs = 30_000, child } = {}) {
  const end = now() + timeoutMs;
  for (;;) {
    child?.assertRunning();
    const ok = await new Promise((done) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        done(true);
      });
      s.on('error', () => done(false));
    });
    if (ok) return;
    if (now() > end) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** `mimic status --state <dir> --json`, parsed. */
export function mimicStatus(stateDir) {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      [MIMIC_BIN, 'status', '--state', stateDir, '--json'],
      { timeout: 15_000 },
      (e, stdout, stderr) => {
        if (e) return fail(new Error(`mimic status --state ${stateDir}: ${e.message}\n${tail(stderr)}`));
        try {
          done(JSON.parse(stdout));
        } catch {
          fail(new Error(`mimic status --state ${stateDir}: not JSON: ${stdout.slice(0, 200)}`));
        }
      },
    );
  });
}

export const mimicInstalled = () => existsSync(MIMIC_BIN);

export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Nearest-rank percentile, p in [0, 100]; Infinity (never happened) counts as the largest. */
export function percentile(xs, p) {
  const v = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}

export const errorText = (e) => (e instanceof Error ? e.message : String(e));
