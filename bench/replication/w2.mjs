// W2: the whole tree (20,000 files, 300 MB) into an empty mirror.
// mimic: from starting the primary (fresh state) on the full tree and a mirror on an empty folder,
// both at once, until the mirror holds the tree exactly. rsync: `rsync -a` into an empty folder
// of the daemon. Beside them, the Node floor (node-floor.mjs), started and timed as mimic is:
// floor / rsync is what a replicator on mimic's stack with mimic's durability can reach here,
// mimic / floor the part that is mimic's own; and the floor with no fsync at all, what that stack
// reaches with no durability, as rsync has none.
// Every run writes into new folders; nothing is deleted until the end, so no run follows a big
// delete (see the disk-settling note in the design).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  compareTrees,
  cpuMs,
  expectAll,
  freePort,
  now,
  runsFromEnv,
  settle,
  waitForMirror,
  whenSteady,
} from '../lib.mjs';
import { bytesRow, guarded, logSample, newSide, sideOrder, summary, timeRow } from './common.mjs';
import { MimicPair, NodeFloorPair, rsyncPush, STALL_MS } from './sides.mjs';

export async function runW2(ctx) {
  const dir = join(ctx.work, 'w2');
  const base = await ctx.tree();
  mkdirSync(ctx.daemon.path('w2'), { recursive: true });
  const expected = expectAll(base);
  const mimic = newSide('mimic');
  const rsync = newSide('rsync');
  const rsyncFsync = newSide('rsync --fsync');
  const floor = newSide('node floor');
  const looseFloor = newSide('node floor, no fsync');
  const timeoutMs = ctx.quick ? 120_000 : 900_000;

  /** Where run `run` of a pair of agents works: new folders, `m-…` for mimic, `f-…` and `fn-…` the floors. */
  const pairAt = (prefix, run) => ({
    name: `w2-${run}`,
    src: base,
    dst: join(dir, `${prefix}-dst-${run}`),
    primaryState: join(dir, `${prefix}-state-${run}`),
    logDir: ctx.logDir,
  });

  /**
   * Resolves once `dst` holds the whole tree, timed from `t0` by the files' ctimes rather than by
   * when the poller saw them (it looks seldom); `check` throws when a side has failed.
   */
  const arrival = (dst, t0, check) =>
    waitForMirror(base, dst, expected, {
      t0,
      timeoutMs,
      stallMs: STALL_MS,
      byCtime: true,
      intervalMs: 100,
      check,
    });

  const runMimic = (run) =>
    guarded(mimic, 'mimic', async () => {
      const pair = new MimicPair(pairAt('m', run));
      await settle();
      const port = await freePort();
      const t0 = now();
      try {
        // Both agents start at once, as an operator would start them (rsync's daemon, on the
        // other side, is running before its clock starts).
        await pair.start({ together: true, port });
        const res = await arrival(pair.dst, t0, () => pair.assertRunning());
        const bytes = await pair.waitAcked(timeoutMs);
        // Both agents' CPU for the whole job, read once they are idle (the primary signs what it
        // sent, for the deltas of later changes, once the transfer is over).
        mimic.cpu.push(await whenSteady(() => cpuMs(pair.primary.pid) + cpuMs(pair.mirror.pid)));
        mimic.times.push(res.ms);
        if (bytes !== null) mimic.bytes.push(bytes);
        logSample(`mimic${res.late ? ' (late)' : ''}`, res.ms, bytes);
      } finally {
        await pair.stop();
      }
    });

  const runFloor = (side, run, durable) =>
    guarded(side, side.name, async () => {
      const pair = new NodeFloorPair({ ...pairAt(durable ? 'f' : 'fn', run), durable });
      await settle();
      const port = await freePort();
      // Its processes are children of this one, counted here once they end and are reaped.
      const cpuBefore = cpuMs('self', { children: true });
      const t0 = now();
      try {
        pair.start(port);
        const res = await arrival(pair.dst, t0, () => pair.assertHealthy());
        if (!(await pair.ended(60_000))) throw new Error('still running 60 s after the tree was across');
        pair.assertHealthy();
        side.cpu.push(cpuMs('self', { children: true }) - cpuBefore);
        side.times.push(res.ms);
        logSample(`${side.name}${res.late ? ' (late)' : ''}`, res.ms, null);
      } finally {
        await pair.stop();
      }
    });

  const runRsync = (side, flags, rel) =>
    guarded(side, side.name, async () => {
      await settle();
      // rsync's CPU: the client (a child of this process) and the daemon's receiver (a child of
      // the daemon, counted there once the daemon has reaped it).
      const rsyncCpu = () =>
        cpuMs('self', { children: true }) + cpuMs(ctx.daemon.child.pid, { children: true });
      const cpuBefore = rsyncCpu();
      const res = await rsyncPush(['-a', ...flags], base, ctx.daemon.url(rel), timeoutMs);
      const cpuAfter = await whenSteady(rsyncCpu);
      const cmp = compareTrees(base, ctx.daemon.path(rel));
      if (!cmp.equal) throw new Error(`destination differs: ${cmp.diffs.join('; ')}`);
      side.times.push(res.ms);
      side.cpu.push(cpuAfter - cpuBefore);
      if (res.bytes !== null) side.bytes.push(res.bytes);
      logSample(side.name, res.ms, res.bytes);
    });

  const runs = runsFromEnv(3);
  for (let run = 0; run < runs; run++) {
    console.log(`  W2 run ${run + 1}/${runs}`);
    const sides = {
      mimic: () => runMimic(run),
      rsync: () => runRsync(rsync, [], `w2/r-${run}`),
      fsync: () => (ctx.fsync ? runRsync(rsyncFsync, ['--fsync'], `w2/rf-${run}`) : null),
      floor: () => runFloor(floor, run, true),
      looseFloor: () => runFloor(looseFloor, run, false),
    };
    for (const s of sideOrder(run, ['mimic', 'rsync', 'floor', 'looseFloor', 'fsync'])) await sides[s]();
  }

  const t = ctx.targets;
  const m = summary(mimic, 'times');
  const f = summary(floor, 'times');
  const fn = summary(looseFloor, 'times');
  const r = summary(rsync, 'times');
  for (const [side, v] of [
    [floor, f],
    [looseFloor, fn],
  ]) {
    if (typeof v === 'number' && typeof r === 'number')
      console.log(`  ${side.name} / rsync: ${(v / r).toFixed(2)} (time to mirrored, medians)`);
  }
  return {
    rows: [
      timeRow('W2', 'time to mirrored', m, rsync.name, r, t.w2Time),
      ...(ctx.fsync
        ? [timeRow('W2', 'time to mirrored', m, rsyncFsync.name, summary(rsyncFsync, 'times'), t.w2Time)]
        : []),
      timeRow('W2', 'time to mirrored', m, floor.name, f, null),
      timeRow('W2', 'time to mirrored', m, looseFloor.name, fn, null),
      bytesRow('W2', 'bytes on the wire', summary(mimic, 'bytes'), rsync.name, summary(rsync, 'bytes'), null),
      timeRow(
        'W2',
        'CPU time, all processes',
        summary(mimic, 'cpu'),
        rsync.name,
        summary(rsync, 'cpu'),
        null,
      ),
      timeRow(
        'W2',
        'CPU time, all processes',
        summary(mimic, 'cpu'),
        floor.name,
        summary(floor, 'cpu'),
        null,
      ),
    ],
    errors: [mimic, rsync, rsyncFsync, floor, looseFloor]
      .filter((s) => s.error)
      .map((s) => `W2 ${s.name}: ${s.error}`),
  };
}
