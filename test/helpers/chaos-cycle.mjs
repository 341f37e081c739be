// One cycle of the kill -9 loop, shared by test/chaos.test.ts and bench/chaos.mjs (plain
// JavaScript, so that the bench runs it without a TypeScript step).
//
// A cycle, on three fresh folders P, A and B, every node a real process:
//   1. P: a library primary (chaos-primary.mjs) with peers A and B; A and B: `mimic mirror`
//      with --listen and --primary listing all three nodes.
//   2. The writer (this process) changes P's folder in small batches (writes, in-place edits of
//      big files, deletes, renames; every file lands by an atomic rename, so each version is
//      whole on disk), and after each batch asks P to flush to both mirrors. A flush that
//      resolves confirms the batch. Sometimes a mirror is killed with SIGKILL and restarted in
//      the middle of this.
//   3. At a random moment P is killed with SIGKILL; a few more changes reach P's disk only.
//   4. A is promoted (`mimic promote`). Every confirmed write must be on A: each path holds
//      the version of the last confirmed flush or a later one.
//   5. A few writes on A; B must follow A and equal it; P restarts as a mirror of A and must
//      equal A, keeping under .mimic/diverged/ whatever it held that A did not have.
//   At every check, every file of every node (diverged copies included) must be a whole
//   version the writer wrote for that path: never torn, never invented.
//
// Split in three: chaos-procs.mjs (processes, waits, ports), chaos-tree.mjs (snapshots and
// convergence) and this file (the writer and the cycle).
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  freePorts,
  KiB,
  MIMIC_BIN,
  rngOf,
  runMimic,
  sleep,
  startLibraryPrimary,
  statusOf,
  waitFor,
} from './chaos-procs.mjs';
import { divergedOf, sha256, snapshot, waitConverged } from './chaos-tree.mjs';

export {
  CHAOS_PRIMARY,
  freePorts,
  MIMIC_BIN,
  ProcessSet,
  runMimic,
  sleep,
  startLibraryPrimary,
} from './chaos-procs.mjs';
export { snapshot } from './chaos-tree.mjs';

/*
 * The writer and its record. history: path → [{ sha256 | null (absent), on }] in write order,
 * across nodes (P before the kill, A after the promotion). `confirmed`: for each path, the
 * index in its history as of the last flush that resolved.
 */
class Workload {
  constructor(rng, staging) {
    this.rng = rng;
    this.staging = staging;
    this.history = new Map();
    this.confirmed = new Map();
    this.count = 0;
    this.paths = [];
    for (let d = 0; d < 4; d++) for (let f = 0; f < 8; f++) this.paths.push(`d${d}/f${f}.dat`);
  }

  #record(path, hash, on, op) {
    if (!this.history.has(path)) this.history.set(path, []);
    this.history.get(path).push({ sha256: hash, on, op, n: this.count });
  }

  /** Which written version has this content, for failure messages. */
  explain(hash) {
    if (!hash) return 'nothing';
    for (const [path, h] of this.history) {
      const i = h.findIndex((v) => v.sha256 === hash);
      if (i >= 0) return `${hash.slice(0, 12)} (${path} version ${i}: ${h[i].op} #${h[i].n} on ${h[i].on})`;
    }
    return `${hash.slice(0, 12)} (written by no one)`;
  }

  /** The history of one path, for failure messages. */
  story(path) {
    return (this.history.get(path) ?? [])
      .map((v, i) => `${i}:${v.op}#${v.n}@${v.on}=${v.sha256 ? v.sha256.slice(0, 8) : '-'}`)
      .join(' ');
  }

  versionsOf(path) {
    return new Set((this.history.get(path) ?? []).map((v) => v.sha256).filter(Boolean));
  }

  /** Everything written so far is confirmed (a flush covering it resolved). */
  confirm() {
    for (const [path, h] of this.history) this.confirmed.set(path, h.length - 1);
  }

  get confirmedWrites() {
    let n = 0;
    for (const i of this.confirmed.values()) n += i + 1;
    return n;
  }

  async #place(root, path, data, on, op) {
    const tmp = join(this.staging, `${this.count}-${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(tmp, data);
    await rename(tmp, join(root, path));
    this.#record(path, sha256(data), on, op);
  }

  #content(path, on, size) {
    const head = Buffer.from(`${path} #${this.count} on ${on}\n`);
    return Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
  }

  async #existing(root) {
    const out = [];
    for (const p of this.paths) if (await lstat(join(root, p)).catch(() => null)) out.push(p);
    return out;
  }

  /** Prepares the folders and a first set of files. */
  async seed(root, on) {
    for (let d = 0; d < 4; d++) await mkdir(join(root, `d${d}`), { recursive: true });
    for (const path of this.paths.slice(0, 10)) {
      this.count++;
      await this.#place(root, path, this.#content(path, on, this.rng.int(100, 4000)), on, 'seed');
    }
  }

  /** One random change in `root`; `on` names the node whose folder it is. */
  async step(root, on) {
    const { rng } = this;
    this.count++;
    const roll = rng.next();
    const existing = await this.#existing(root);
    if (roll < 0.15 && existing.length > 0) {
      const path = rng.pick(existing);
      await unlink(join(root, path));
      this.#record(path, null, on, 'delete');
      return 'delete';
    }
    if (roll < 0.27 && existing.length > 0) {
      const from = rng.pick(existing);
      const to = rng.pick(this.paths.filter((p) => p !== from));
      const data = await readFile(join(root, from));
      await rename(join(root, from), join(root, to));
      this.#record(from, null, on, `rename-to:${to}`);
      this.#record(to, sha256(data), on, `rename-from:${from}`);
      return 'rename';
    }
    if (roll < 0.4) {
      const bigOnes = [];
      for (const p of existing) {
        const st = await lstat(join(root, p)).catch(() => null);
        if (st && st.size >= 64 * KiB) bigOnes.push(p);
      }
      if (bigOnes.length > 0) {
        // A few 4 KiB overwrites in a big file: the mirror gets a delta against its copy.
        const path = rng.pick(bigOnes);
        const data = await readFile(join(root, path));
        const head = Buffer.from(`${path} #${this.count} on ${on}\n`);
        head.copy(data, 0, 0, Math.min(head.length, data.length));
        for (let i = rng.int(1, 4); i > 0; i--) {
          randomBytes(4 * KiB).copy(data, rng.int(head.length, data.length - 4 * KiB));
        }
        await this.#place(root, path, data, on, 'edit');
        return 'edit';
      }
    }
    const path = rng.pick(this.paths);
    const size = rng.chance(0.15) ? rng.int(100 * KiB, 1024 * KiB) : rng.int(50, 6000);
    await this.#place(root, path, this.#content(path, on, size), on, 'write');
    return 'write';
  }

  /** Files whose content is not a version written for their path (or whose path was never written). */
  torn(tree, node) {
    const bad = [];
    for (const [path, e] of tree) {
      if (e.type === 'dir') continue;
      if (e.type !== 'file' || !this.versionsOf(path).has(e.sha256))
        bad.push(`${node}:${path} holds ${e.type === 'file' ? this.explain(e.sha256) : e.type}`);
    }
    return bad;
  }

  /** Paths whose content on `tree` is older than the last confirmed version (or missing). */
  lost(tree, node) {
    const bad = [];
    for (const [path, idx] of this.confirmed) {
      const h = this.history.get(path);
      const actual = tree.get(path)?.sha256 ?? null;
      let ok = false;
      for (let j = idx; j < h.length && !ok; j++) ok = h[j].sha256 === actual;
      if (!ok) bad.push(`${node}:${path} holds ${this.explain(actual)}; confirmed up to version ${idx}`);
    }
    return bad;
  }
}

/**
 * Runs one cycle under `baseDir` (which must exist and be empty). Throws when something does
 * not happen in time (a node not starting, a promotion failing, trees not converging); returns
 * counts otherwise, with `lost` and `torn` lists that must be empty.
 */
export async function runChaosCycle({ baseDir, procs, seed, killAtMs, log = () => {} }) {
  const started = Date.now();
  const rng = rngOf(seed);
  const dirs = Object.fromEntries(['P', 'A', 'B', 'staging'].map((n) => [n, join(baseDir, n)]));
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  const [pPort, aPort, bPort] = await freePorts(3);
  const url = { P: `ws://127.0.0.1:${pPort}`, A: `ws://127.0.0.1:${aPort}`, B: `ws://127.0.0.1:${bPort}` };
  const every = [url.P, url.A, url.B].join(',');
  const details = async () => procs.describe();
  const work = new Workload(rng, dirs.staging);
  const result = {
    seed,
    killAtMs: 0,
    mirrorKilled: null,
    changes: 0,
    flushes: 0,
    flushFailures: 0,
    /** How long each resolved flush took, in ms. */
    flushMs: [],
    confirmedWrites: 0,
    pathsChecked: 0,
    lost: [],
    /** Confirmed versions a mirror did not hold yet when its flush resolved. */
    notFlushed: [],
    torn: [],
    keptRequired: 0,
    keptLost: [],
    diverged: { P: 0, A: 0, B: 0 },
    writeMs: 0,
    promoteMs: 0,
    bConvergeMs: 0,
    pConvergeMs: 0,
    totalMs: 0,
  };

  const mirror = (name, label) =>
    procs.start(label ?? name, [
      MIMIC_BIN,
      'mirror',
      dirs[name],
      '--primary',
      every,
      '--listen',
      `127.0.0.1:${{ P: pPort, A: aPort, B: bPort }[name]}`,
    ]);
  const connected = (proc, n = 1) =>
    waitFor(() => proc.events('connected').length >= n, 20_000, `${proc.label} to connect`, details);

  // 1. Nodes up, seed files confirmed on both mirrors.
  await work.seed(dirs.P, 'P');
  const primary = await startLibraryPrimary(procs, 'P (library primary)', dirs.P, pPort, [url.A, url.B]);
  const nodes = { A: mirror('A'), B: mirror('B') };
  await Promise.all([connected(nodes.A), connected(nodes.B)]);
  const first = await primary.request('flush 2 30000', 40_000);
  if (!first.startsWith('flushed')) throw new Error(`first flush: ${first}\n${await details()}`);
  work.confirm();

  // 2–3. Batches of changes, each confirmed by a flush, until P is killed.
  result.killAtMs = rng.int(300, 2500);
  if (killAtMs !== undefined) result.killAtMs = killAtMs; // a replay with a different timing
  let killed = false;
  const writeStart = Date.now();
  const killTimer = setTimeout(() => {
    killed = true;
    primary.child.kill('SIGKILL');
  }, result.killAtMs);
  let mirrorBack = Promise.resolve();
  if (rng.chance(0.4)) {
    const which = rng.pick(['A', 'B']);
    const at = rng.int(50, Math.max(60, result.killAtMs - 150));
    const downMs = rng.int(50, 600);
    result.mirrorKilled = which;
    mirrorBack = (async () => {
      await sleep(at);
      await nodes[which].kill9();
      await sleep(downMs);
      nodes[which] = mirror(which, `${which} (restarted)`);
      await waitFor(() => statusOf(dirs[which]), 20_000, `${which} to answer after its restart`, details);
    })();
    mirrorBack.catch(() => {}); // awaited below; not unhandled if the writer fails first
  }
  try {
    while (!killed) {
      for (let i = rng.int(1, 6); i > 0 && !killed; i--) {
        await work.step(dirs.P, 'P');
        result.changes++;
      }
      if (killed) break;
      let answer;
      const asked = Date.now();
      try {
        answer = await primary.request('flush 2 20000', 30_000);
      } catch {
        break; // killed while flushing
      }
      if (answer.startsWith('flushed')) {
        work.confirm();
        result.flushes++;
        result.flushMs.push(Date.now() - asked);
        // What flush promises, checked while nothing else is written: both mirrors hold every
        // confirmed version already.
        for (const n of ['A', 'B']) {
          const tree = await snapshot(dirs[n]);
          result.notFlushed.push(...work.lost(tree, `${n} after flush ${result.flushes}`));
          result.torn.push(...work.torn(tree, `${n} after flush ${result.flushes}`));
        }
      } else {
        result.flushFailures++;
        const st = await primary.request('status', 5_000).catch(() => 'status: no answer');
        const ms = await Promise.all(['A', 'B'].map((n) => statusOf(dirs[n]).catch((e) => e.message)));
        log(`flush failed: ${answer}\n  P ${st}\n  A ${JSON.stringify(ms[0])}\n  B ${JSON.stringify(ms[1])}`);
      }
    }
  } finally {
    clearTimeout(killTimer);
  }
  if (!killed) primary.child.kill('SIGKILL');
  await primary.exited;
  result.writeMs = Date.now() - writeStart;
  // Changes that reach P's disk after it died: only P will ever have them.
  for (let i = rng.int(1, 3); i > 0; i--) {
    await work.step(dirs.P, 'P');
    result.changes++;
  }
  await mirrorBack;
  result.confirmedWrites = work.confirmedWrites;
  result.pathsChecked = work.confirmed.size;
  for (const n of ['A', 'B']) result.torn.push(...work.torn(await snapshot(dirs[n]), `${n} after the kill`));

  // 4. A is promoted; every confirmed write must be there.
  const t0 = Date.now();
  const promoted = await runMimic(['promote', '--state', join(dirs.A, '.mimic')]);
  result.promoteMs = Date.now() - t0;
  if (promoted.code !== 0 || !/^promoted: epoch 2 /.test(promoted.stdout)) {
    throw new Error(
      `promote A: exit ${promoted.code}: ${promoted.stdout}${promoted.stderr}\n${await details()}`,
    );
  }
  const a0 = await snapshot(dirs.A);
  const p0 = await snapshot(dirs.P);
  result.lost.push(...work.lost(a0, 'A after promotion'));
  result.torn.push(...work.torn(a0, 'A after promotion'));

  // 5. Writes on A; B follows A; P rejoins as a mirror of A.
  for (let i = rng.int(1, 4); i > 0; i--) {
    await work.step(dirs.A, 'A');
    result.changes++;
  }
  result.bConvergeMs = await waitConverged(dirs.A, dirs.B, details);
  // Equal trees can come before B has taken up A's epoch (A's writes may cancel out): B must
  // get there on its own, within its reconnect backoff.
  let b = await statusOf(dirs.B);
  for (let waited = 0; !(b.connected && b.epoch.term === 2) && waited < 15_000; waited += 100) {
    await sleep(100);
    b = await statusOf(dirs.B);
  }
  if (b.role !== 'mirror' || b.following !== url.A || b.epoch.term !== 2 || !b.connected)
    throw new Error(`B after failover: ${JSON.stringify(b)}`);
  result.torn.push(...work.torn(await snapshot(dirs.B), 'B following A'));

  nodes.P = mirror('P', 'P (rejoined as mirror)');
  result.pConvergeMs = await waitConverged(dirs.A, dirs.P, details);
  const p = await statusOf(dirs.P);
  if (p.role !== 'mirror' || p.following !== url.A || p.epoch.term !== 2)
    throw new Error(`P after rejoining: ${JSON.stringify(p)}`);
  const pTree = await snapshot(dirs.P);
  result.torn.push(...work.torn(pTree, 'P rejoined'));
  // What P held that A did not have at its promotion must be in P's tree or under diverged/.
  const known = new Set(work.paths);
  const kept = await divergedOf(dirs.P, known);
  for (const [path, e] of p0) {
    if (e.type !== 'file' || a0.get(path)?.sha256 === e.sha256) continue;
    const there =
      pTree.get(path)?.sha256 === e.sha256 || kept.some((k) => k.path === path && k.sha256 === e.sha256);
    if (there) result.keptRequired++;
    else result.keptLost.push(`P:${path} ${e.sha256.slice(0, 12)}`);
  }
  for (const n of ['P', 'A', 'B']) {
    const list = n === 'P' ? kept : await divergedOf(dirs[n], known);
    result.diverged[n] = list.length;
    for (const k of list) {
      if (!work.versionsOf(k.path).has(k.sha256)) result.torn.push(`${n}:.mimic/diverged/${k.file}`);
    }
  }
  const final = await snapshot(dirs.A);
  if (!isDeepStrictEqual(final, await snapshot(dirs.B))) {
    result.bConvergeMs += await waitConverged(dirs.A, dirs.B, details);
  }
  await procs.stopAll();
  result.totalMs = Date.now() - started;
  const named = new Set();
  for (const line of [...result.lost, ...result.notFlushed, ...result.torn, ...result.keptLost]) {
    const m = /:(\S+?)(?: |$)/.exec(line);
    if (m && work.history.has(m[1])) named.add(m[1]);
  }
  result.histories = Object.fromEntries([...named].map((p) => [p, work.story(p)]));
  return result;
}

/** One line per cycle, for logs. */
export function describeCycle(i, r) {
  const bad = r.lost.length + r.torn.length + r.keptLost.length + r.notFlushed.length + r.flushFailures;
  return [
    `cycle ${i}`,
    `seed ${r.seed}`,
    `kill P at ${r.killAtMs} ms${r.mirrorKilled ? ` (and ${r.mirrorKilled} before)` : ''}`,
    `${r.changes} changes, ${r.flushes} flushes (${r.flushFailures} failed)`,
    `${r.confirmedWrites} confirmed writes over ${r.pathsChecked} paths`,
    `lost ${r.lost.length}`,
    `not on a mirror when its flush resolved ${r.notFlushed.length}`,
    `torn ${r.torn.length}`,
    `P kept ${r.keptRequired} (lost ${r.keptLost.length}), diverged P/A/B ${r.diverged.P}/${r.diverged.A}/${r.diverged.B}`,
    `promote ${r.promoteMs} ms, B ${r.bConvergeMs} ms, P ${r.pConvergeMs} ms, total ${r.totalMs} ms`,
    bad ? 'FAIL' : 'ok',
  ].join(' | ');
}
