// Real etcd clusters (1 or more members) on 127.0.0.1 for the end-to-end tests and the bench:
// free ports, one data dir and one log file per member, test timings, kill -9 and restart.
// Plain JavaScript, so that bench/*.mjs can load it under plain node; types are in etcd.d.mts.
//
// A member is down, starting (process up, /health not yet true) or serving; stop(), kill9() or
// a crash take it down. Its first start() joins a new cluster, later ones reuse its data dir
// (--initial-cluster-state existing). startEtcd() starts every member at once: a cluster of 3
// has no leader, so no member is healthy, until 2 of them are up.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts } from './chaos-procs.mjs';
import { cleanEnv, track } from './children.mjs';

export const ETCD_BIN = 'etcd';
/** Raft timings for tests: a dead leader is replaced in about a second, not in several. */
export const HEARTBEAT_MS = 50;
export const ELECTION_MS = 500;

const READY_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const TAIL_LINES = 15;
const TAIL_BYTES = 16 * 1024;
const START_ATTEMPTS = 3;

/** Go's name for the architectures etcd 3.4 runs on only with ETCD_UNSUPPORTED_ARCH set to it. */
const UNSUPPORTED_GOARCH = { arm64: 'arm64', s390x: 's390x', arm: 'arm', ia32: '386' };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The clean environment without ETCD_* variables, which etcd reads as flags. */
function etcdEnv() {
  const env = cleanEnv();
  for (const key of Object.keys(env)) {
    if (key.startsWith('ETCD_') && key !== 'ETCD_UNSUPPORTED_ARCH') delete env[key];
  }
  // etcd 3.4 refuses to start on anything but amd64 and ppc64le unless told the arch is known.
  const arch = UNSUPPORTED_GOARCH[process.arch];
  if (arch) env.ETCD_UNSUPPORTED_ARCH ??= arch;
  return env;
}

/** The last `lines` lines of the file at `path` ('' when it cannot be read). */
function tail(path, lines) {
  let fd;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString('utf8').split('\n').filter(Boolean).slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether the member at `clientUrl` says, on GET /metrics, that it is the raft leader. */
async function isLeader(clientUrl) {
  try {
    const res = await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(1_000) });
    return /^etcd_server_is_leader 1$/m.test(await res.text());
  } catch {
    return false;
  }
}

/** Whether the member at `clientUrl` answers GET /health with {"health":"true"}. */
async function healthy(clientUrl) {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
    const body = await res.json();
    return body.health === 'true';
  } catch {
    return false;
  }
}

class EtcdMember {
  #child = null;
  #exited = Promise.resolve();
  #lastExit = null;
  #started = false;

  constructor({ name, clientPort, peerPort, dataDir, logPath, initialCluster, token }) {
    this.name = name;
    this.clientUrl = `http://127.0.0.1:${clientPort}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
    this.dataDir = dataDir;
    this.logPath = logPath;
    this.initialCluster = initialCluster;
    this.token = token;
  }

  get running() {
    return this.#child !== null;
  }

  get pid() {
    return this.#child?.pid ?? null;
  }

  /**
   * Starts the member, the first time as part of a new cluster, later with the data dir it
   * already has; resolves once it serves.
   */
  async start() {
    this.#spawn(this.#started ? 'existing' : 'new');
    this.#started = true;
    await this.#ready();
  }

  /** SIGKILL, no chance to flush or say goodbye; resolves once the process has exited. */
  async kill9() {
    if (!this.#child) return;
    this.#child.kill('SIGKILL');
    await this.#exited;
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
  async stop() {
    const child = this.#child;
    if (!child) return;
    child.kill('SIGTERM');
    let timer;
    const graceOver = new Promise((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS, 'late')));
    if ((await Promise.race([this.#exited, graceOver])) === 'late') child.kill('SIGKILL');
    clearTimeout(timer);
    await this.#exited;
  }

  /** Name, state and the last lines of the log, for failure messages. */
  describe() {
    const state = this.#child
      ? `pid ${this.#child.pid}`
      : `down${this.#lastExit ? ` (${this.#lastExit})` : ''}`;
    const log = tail(this.logPath, TAIL_LINES) || '(empty log)';
    return `--- etcd ${this.name} ${this.clientUrl}, ${state}; ${this.logPath}:\n${log}`;
  }

  /** Starts the process; `state` is etcd's --initial-cluster-state ('new' or 'existing'). */
  #spawn(state) {
    if (this.#child) throw new Error(`etcd ${this.name} is already running (pid ${this.#child.pid})`);
    const args = [
      ['--name', this.name],
      ['--data-dir', this.dataDir],
      ['--listen-client-urls', this.clientUrl],
      ['--advertise-client-urls', this.clientUrl],
      ['--listen-peer-urls', this.peerUrl],
      ['--initial-advertise-peer-urls', this.peerUrl],
      ['--initial-cluster', this.initialCluster],
      ['--initial-cluster-state', state],
      ['--initial-cluster-token', this.token],
      ['--heartbeat-interval', String(HEARTBEAT_MS)],
      ['--election-timeout', String(ELECTION_MS)],
      // zap: capnslog is deprecated in 3.4 and would look for journald.
      ['--logger', 'zap'],
      ['--log-outputs', 'stderr'],
    ].flat();
    const log = openSync(this.logPath, 'a');
    let child;
    try {
      writeSync(log, `=== mimic: ${ETCD_BIN} ${args.join(' ')} (${new Date().toISOString()})\n`);
      child = track(spawn(ETCD_BIN, args, { stdio: ['ignore', log, log], env: etcdEnv() }));
    } finally {
      closeSync(log);
    }
    this.#child = child;
    this.#lastExit = null;
    this.#exited = new Promise((resolve) => {
      const gone = (why) => {
        if (this.#child === child) this.#child = null;
        this.#lastExit = why;
        resolve();
      };
      child.once('error', (err) => gone(`could not start: ${err.message}`));
      child.once('exit', (code, signal) => gone(signal ? `killed by ${signal}` : `exited with ${code}`));
    });
  }

  /** Resolves once /health says true; throws (with the log) if the process exits first or never does. */
  async #ready() {
    const deadline = Date.now() + READY_MS;
    for (;;) {
      if (!this.#child) throw new Error(`etcd ${this.name} is down before serving\n${this.describe()}`);
      if (await healthy(this.clientUrl)) return;
      if (Date.now() >= deadline) {
        throw new Error(`etcd ${this.name} not healthy after ${READY_MS} ms\n${this.describe()}`);
      }
      await sleep(50);
    }
  }
}

class EtcdCluster {
  constructor(members) {
    this.members = members;
    this.endpoints = members.map((m) => m.clientUrl);
  }

  /** The member that is the raft leader now, or null (none up, no quorum, an election). */
  async leader() {
    const up = this.members.filter((m) => m.running);
    const flags = await Promise.all(up.map((m) => isLeader(m.clientUrl)));
    return up.find((_, i) => flags[i]) ?? null;
  }

  /**
   * Stops every member (SIGTERM, then SIGKILL after a grace period), the leader last, once it
   * has stepped down. A leader that gets SIGTERM while it still counts a peer as connected
   * hands leadership to that peer and, if the peer is going away too, waits for it to take
   * over until etcd's request timeout (5 s + 2 election timeouts). Without its followers it
   * steps down within an election timeout (check-quorum), and then stops at once.
   */
  async stop() {
    const leader = await this.leader();
    const others = this.members.filter((m) => m !== leader && m.running);
    await Promise.all(others.map((m) => m.stop()));
    if (!leader) return;
    if (others.length > 0) {
      const deadline = Date.now() + 4 * ELECTION_MS;
      while (leader.running && Date.now() < deadline && (await isLeader(leader.clientUrl))) await sleep(50);
    }
    await leader.stop();
  }

  describe() {
    return this.members.map((m) => m.describe()).join('\n');
  }
}

/** One attempt at a fresh cluster on ports that were free a moment ago. */
async function tryStart(baseDir, count, name) {
  const ports = await freePorts(2 * count);
  const token = `${name}-${randomBytes(6).toString('hex')}`;
  const names = Array.from({ length: count }, (_, i) => `${name}-${i}`);
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(',');
  const members = names.map(
    (n, i) =>
      new EtcdMember({
        name: n,
        clientPort: ports[2 * i],
        peerPort: ports[2 * i + 1],
        dataDir: join(baseDir, n),
        logPath: join(baseDir, `${n}.log`),
        initialCluster,
        token,
      }),
  );
  const cluster = new EtcdCluster(members);
  try {
    await Promise.all(members.map((m) => m.start()));
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/**
 * Starts a new etcd cluster of `members` members on 127.0.0.1 under `baseDir` (one data dir
 * and one log per member) and resolves once every member serves. A port taken by someone else
 * between choosing it and binding it means a new attempt, on new ports, in a new sub-folder.
 */
export async function startEtcd({ baseDir, members = 1, name = 'mimic-test' }) {
  if (typeof baseDir !== 'string' || baseDir === '') throw new TypeError('startEtcd: baseDir is required');
  if (!Number.isInteger(members) || members < 1) {
    throw new TypeError(`startEtcd: members must be a positive integer, not ${members}`);
  }
  for (let attempt = 1; ; attempt++) {
    const dir = attempt === 1 ? baseDir : join(baseDir, `attempt-${attempt}`);
    mkdirSync(dir, { recursive: true });
    try {
      return await tryStart(dir, members, name);
    } catch (err) {
      const portTaken = /address already in use/.test(err.message);
      if (!portTaken || attempt >= START_ATTEMPTS) throw err;
    }
  }
}
