// W3: W2's tree, then 1% of the files edited in place plus deletes, renames and new files.
// Before each run the source (and rsync's destination) are reset to the W2 tree with a local
// rsync; mimic's mirror is reset by mimic itself, untimed, while the pair starts up.
// mimic: from the end of the edit until the mirror holds the tree exactly. rsync: `rsync -a
// --delete` into the daemon, timed as a command, after the edit.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { applyW3Edit, compareTrees, expectEdit, now, runsFromEnv, settle, waitForMirror } from '../lib.mjs';
import { bytesRow, during, guarded, logSample, newSide, sideOrder, summary, timeRow } from './common.mjs';
import { localSync, MimicPair, rsyncPush, STALL_MS } from './sides.mjs';

export async function runW3(ctx) {
  const dir = join(ctx.work, 'w3');
  const base = await ctx.tree();
  const mSrc = join(dir, 'm-src');
  const rSrc = join(dir, 'r-src');
  mkdirSync(ctx.daemon.path('w3'), { recursive: true });
  const pair = new MimicPair({
    name: 'w3',
    src: mSrc,
    dst: join(dir, 'm-dst'),
    primaryState: join(dir, 'm-state'),
    logDir: ctx.logDir,
  });
  const mimic = newSide('mimic');
  const rsync = newSide('rsync');
  const rsyncFsync = newSide('rsync --fsync');
  const timeoutMs = ctx.quick ? 120_000 : 600_000;

  const runMimic = () =>
    guarded(mimic, 'mimic', async () => {
      await localSync(base, mSrc);
      await pair.start();
      try {
        const before = await pair.waitInSync(ctx.quick ? 120_000 : 900_000);
        await settle();
        const edit = applyW3Edit(mSrc);
        const t0 = now();
        const res = await during(
          'after the change',
          waitForMirror(mSrc, pair.dst, expectEdit(edit), {
            t0,
            timeoutMs,
            stallMs: STALL_MS,
            check: () => pair.assertRunning(),
          }),
        );
        const after = await pair.waitAcked(timeoutMs);
        const bytes = before === null || after === null ? null : after - before;
        mimic.times.push(res.ms);
        if (bytes !== null) mimic.bytes.push(bytes);
        logSample(`mimic${res.late ? ' (late)' : ''}`, res.ms, bytes);
      } finally {
        await pair.stop();
      }
    });

  const runRsync = (side, flags, rel) =>
    guarded(side, side.name, async () => {
      const dst = ctx.daemon.path(rel);
      await localSync(base, rSrc);
      await localSync(base, dst);
      applyW3Edit(rSrc);
      await settle();
      const res = await rsyncPush(['-a', '--delete', ...flags], rSrc, ctx.daemon.url(rel), timeoutMs);
      const cmp = compareTrees(rSrc, dst);
      if (!cmp.equal) throw new Error(`destination differs: ${cmp.diffs.join('; ')}`);
      side.times.push(res.ms);
      if (res.bytes !== null) side.bytes.push(res.bytes);
      logSample(side.name, res.ms, res.bytes);
    });

  const sides = {
    mimic: runMimic,
    rsync: () => runRsync(rsync, [], 'w3/r-dst'),
    fsync: () => (ctx.fsync ? runRsync(rsyncFsync, ['--fsync'], 'w3/rf-dst') : null),
  };
  const runs = runsFromEnv(3);
  for (let run = 0; run < runs; run++) {
    console.log(`  W3 run ${run + 1}/${runs}`);
    for (const s of sideOrder(run, ['mimic', 'rsync', 'fsync'])) await sides[s]();
  }

  const t = ctx.targets;
  const m = summary(mimic, 'times');
  return {
    rows: [
      timeRow('W3', 'time to mirrored', m, rsync.name, summary(rsync, 'times'), t.time),
      ...(ctx.fsync
        ? [timeRow('W3', 'time to mirrored', m, rsyncFsync.name, summary(rsyncFsync, 'times'), t.time)]
        : []),
      bytesRow(
        'W3',
        'bytes on the wire',
        summary(mimic, 'bytes'),
        rsync.name,
        summary(rsync, 'bytes'),
        t.w3Bytes,
      ),
    ],
    errors: [mimic, rsync, rsyncFsync].filter((s) => s.error).map((s) => `W3 ${s.name}: ${s.error}`),
  };
}
