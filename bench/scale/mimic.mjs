// mimic's side of the scale workload: a primary on the tree and a mirror on an empty folder
// (MimicPair: `mimic primary` and `mimic mirror` on loopback), through the initial sync, an idle
// spell, a restart on the unchanged tree and one changed file.
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { compareTrees, errorText, freePort, mimicStatus, now, settle, sleep } from '../lib.mjs';
import { logReader, pairCpuWhenQuiet, pairMem, sizeOf } from './procs.mjs';

/** Files in `dir` (0 when it does not exist yet). */
function entries(dir) {
  try {
    return readdirSync(dir).length;
  } catch (e) {
    if (e.code === 'ENOENT') return 0;
    throw e;
  }
}

/**
 * Resolves once every folder of the tree under `dst` holds all its files. A mirror writes each
 * file under a temporary name in its state folder and renames it into place, so a name there is a
 * complete file. Cheap on purpose: a folder found complete is not read again, and the pause after
 * each look is 19× what the look cost (at most a twentieth of a core), within 250 ms to 5 s; the time reported for the sync does not come from here (see newestCtime). Throws when
 * no file has arrived for `stallMs`.
 */
async function waitForTree(dst, lay, { timeoutMs, stallMs, check }) {
  let pending = lay.dirs.map((d) => ({ ...d, seen: 0 }));
  const end = now() + timeoutMs;
  let progressAt = now();
  while (pending.length > 0) {
    check();
    const start = now();
    let grew = false;
    for (const d of pending) {
      const n = entries(join(dst, d.name));
      if (n > d.seen) grew = true;
      d.seen = n;
    }
    pending = pending.filter((d) => d.seen < d.count);
    if (grew) progressAt = now();
    if (pending.length === 0) return;
    const left = pending.reduce((s, d) => s + d.count - d.seen, 0);
    if (now() > end) throw new Error(`not mirrored after ${timeoutMs / 1000} s: ${left} files missing`);
    if (now() - progressAt > stallMs)
      throw new Error(`mirror stalled: nothing arrived for ${stallMs / 1000} s; ${left} files missing`);
    await sleep(Math.min(5000, Math.max(250, 19 * (now() - start))));
  }
}

/**
 * The newest status-change time (wall clock, ms) of the tree's files under `dst`: the kernel
 * stamps it as each file takes its final name (and again at any later change, so it is never
 * early), whenever the poller happened to look.
 */
function newestCtime(dst, lay) {
  let newest = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < lay.files; i++) newest = Math.max(newest, lstatSync(join(dst, lay.rel(i))).ctimeMs);
  return newest;
}

/** The first line of `event` among those read so far from `reader` (kept in `seen`). */
function firstEvent(seen, reader, event) {
  for (const line of reader.poll()) seen.push(line);
  return seen.find((l) => l.event === event) ?? null;
}

/**
 * Polls `mimic status --json` of both agents until the mirror is connected and has applied the
 * primary's seq, and the primary has its ack; resolves with both statuses. A primary answers
 * status only once it is ready (on a big tree the mirror can hold every file before that), so a
 * failed read is retried until `timeoutMs`.
 */
async function inStep(pair, timeoutMs) {
  const end = now() + timeoutMs;
  let last = '';
  for (;;) {
    pair.assertRunning();
    try {
      const [p, m] = await Promise.all([mimicStatus(pair.primaryState), mimicStatus(pair.mirrorState)]);
      const acked = (Array.isArray(p.mirrors) ? p.mirrors : []).every((x) => x.ackedSeq === p.seq);
      if (m.connected && m.appliedSeq === p.seq && acked) return { p, m };
      last = `primary seq ${p.seq}, mirror applied ${m.appliedSeq}${m.connected ? '' : ', not connected'}`;
    } catch (e) {
      last = errorText(e).split('\n')[0];
    }
    if (now() > end) throw new Error(`mirror not in step after ${timeoutMs / 1000} s: ${last}`);
    await sleep(200);
  }
}

/** Starts both agents at once, as an operator would; { t0, wallT0, logs } to time them by. */
async function startPair(pair) {
  const logs = {
    primary: join(pair.logDir, `${pair.name}-primary.log`),
    mirror: join(pair.logDir, `${pair.name}-mirror.log`),
  };
  const offsets = { primary: sizeOf(logs.primary), mirror: sizeOf(logs.mirror) };
  const port = await freePort();
  const wallT0 = Date.now();
  const t0 = now();
  await pair.start({ together: true, port });
  const readers = {
    primary: logReader(logs.primary, offsets.primary),
    mirror: logReader(logs.mirror, offsets.mirror),
  };
  return { t0, wallT0, readers };
}

/** Log time of a line, in ms after the wall-clock start `wallT0`. */
const since = (line, wallT0) => (line ? Date.parse(line.time) - wallT0 : null);

/**
 * The initial sync: from starting both agents (the primary with no state, the mirror on an empty
 * folder) until the mirror holds the whole tree, by the newest ctime there (as W2). Then, once
 * both are in step and quiet: each agent's CPU since it started and its memory (VmHWM, the peak
 * over the sync; VmRSS). The mirror is compared in full with the source afterwards.
 */
export async function initialSync(pair, lay, { timeoutMs, stallMs }) {
  await settle();
  const { wallT0, readers } = await startPair(pair);
  await waitForTree(pair.dst, lay, { timeoutMs, stallMs, check: () => pair.assertRunning() });
  await inStep(pair, timeoutMs);
  const cpu = await pairCpuWhenQuiet(pair);
  const mem = pairMem(pair);
  const cmp = compareTrees(pair.src, pair.dst);
  if (!cmp.equal) throw new Error(`mirror differs from the source: ${cmp.diffs.join('; ')}`);
  const ms = newestCtime(pair.dst, lay) - wallT0;
  const readyMs = since(firstEvent([], readers.primary, 'ready'), wallT0);
  return { ms, readyMs, cpu, mem };
}

/** How long each agent is given to end on SIGTERM before it is killed (a big tree's state to close). */
const STOP_GRACE_MS = 60_000;

/**
 * SIGTERM to both, the mirror first, as MimicPair.stop() does but with a longer grace; resolves
 * with { ms } (both ended) and notes on any agent that had to be killed or ended with an error.
 */
export async function stopPair(pair) {
  const t0 = now();
  const notes = [];
  for (const [role, c] of [
    ['mirror', pair.mirror],
    ['primary', pair.primary],
  ]) {
    if (!c) continue;
    await c.stop(STOP_GRACE_MS);
    const { code, signal } = await c.exited;
    if (signal === 'SIGKILL')
      notes.push(`${role} did not end within ${STOP_GRACE_MS / 1000} s of SIGTERM (killed)`);
    else if (code !== 0 && code !== null) notes.push(`${role} ended with status ${code}`);
  }
  return { ms: now() - t0, notes };
}

/**
 * A restart on the unchanged tree: both agents started again at once, timed until the primary has
 * logged `ready`, the mirror `connected`, and the mirror is in step (its appliedSeq is the
 * primary's seq). When the seq in those lines is the one both report once they are up, the mirror
 * was in step from its `connected` on, and the end is the later of the two lines (by their log
 * times); otherwise it is the first status read showing them in step (`byPoll`). Then: each
 * agent's CPU since it started, once quiet, and its memory.
 */
export async function restartPair(pair, { timeoutMs }) {
  await settle();
  const { t0, wallT0, readers } = await startPair(pair);
  const seen = { primary: [], mirror: [] };
  let ready = null;
  let connected = null;
  const end = t0 + timeoutMs;
  while (!(ready && connected)) {
    pair.assertRunning();
    if (now() > end) throw new Error(`no ${ready ? 'connected' : 'ready'} line after ${timeoutMs / 1000} s`);
    await sleep(10);
    ready ??= firstEvent(seen.primary, readers.primary, 'ready');
    connected ??= firstEvent(seen.mirror, readers.mirror, 'connected');
  }
  const readyMs = since(ready, wallT0);
  const connectedMs = since(connected, wallT0);
  const { p } = await inStep(pair, timeoutMs);
  const steady = p.seq === ready.seq && connected.seq === p.seq && connected.appliedSeq === p.seq;
  const byPoll = !steady;
  const ms = steady ? Math.max(readyMs, connectedMs) : now() - t0;
  const cpu = await pairCpuWhenQuiet(pair);
  const mem = pairMem(pair);
  return { ms, readyMs, connectedMs, byPoll, cpu, mem, seq: ready.seq };
}

/**
 * One file changed: `change()` writes it in the primary's folder and returns { rel, content };
 * timed from the end of that write until the mirror's file has the new bytes (polled every 2 ms),
 * then the mirror must be in step.
 */
export async function oneFile(pair, change, { timeoutMs }) {
  await settle();
  const { rel, content } = change();
  const t0 = now();
  const target = join(pair.dst, rel);
  for (;;) {
    const st = statSync(target, { throwIfNoEntry: false });
    if (st?.size === content.length && readFileSync(target).equals(content)) break;
    if (now() - t0 > timeoutMs) throw new Error(`${rel} not on the mirror after ${timeoutMs / 1000} s`);
    pair.assertRunning();
    await sleep(2);
  }
  const ms = now() - t0;
  await inStep(pair, timeoutMs);
  return { ms, change: { rel, content } };
}
