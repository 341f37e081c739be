// W1: one large file, 64 scattered 4 KiB overwrites + a 1,000-byte insertion + a 500-byte deletion.
// mimic: time from the new version landing in the source (an atomic rename) until the mirror holds
// it exactly; wire bytes from the primary's bytesSent. rsync: `rsync -a --no-whole-file` into the
// daemon, timed as a command; wire bytes from --stats.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  applyW1Edit,
  compareTrees,
  MiB,
  now,
  runsFromEnv,
  settle,
  waitForMirror,
  writeRandomFile,
} from '../lib.mjs';
import {
  bytesRow,
  during,
  guarded,
  logSample,
  newSide,
  place,
  sideOrder,
  summary,
  timeRow,
} from './common.mjs';
import { MimicPair, rsyncPush } from './sides.mjs';

const FILE = 'file.bin';

export async function runW1(ctx) {
  const dir = join(ctx.work, 'w1');
  const size = ctx.quick ? 16 * MiB : 256 * MiB;
  const basis = join(dir, 'basis.bin');
  const edited = join(dir, 'edited.bin');
  const stage = join(dir, 'stage.bin');
  const mSrc = join(dir, 'm-src');
  const rSrc = join(dir, 'r-src');
  for (const d of [mSrc, rSrc, ctx.daemon.path('w1')]) mkdirSync(d, { recursive: true });
  console.log(`  W1: ${size / MiB} MiB file`);
  writeRandomFile(basis, size, 1);
  applyW1Edit(basis, edited, size, 1);

  const pair = new MimicPair({
    name: 'w1',
    src: mSrc,
    dst: join(dir, 'm-dst'),
    primaryState: join(dir, 'm-state'),
    logDir: ctx.logDir,
  });
  const mimic = newSide('mimic');
  const rsync = newSide('rsync');
  const rsyncFsync = newSide('rsync --fsync');
  const timeoutMs = ctx.quick ? 60_000 : 300_000;

  const runMimic = () =>
    guarded(mimic, 'mimic', async () => {
      place(basis, stage, join(mSrc, FILE));
      await pair.start();
      try {
        const before = await pair.waitInSync(timeoutMs);
        await settle();
        place(edited, stage, join(mSrc, FILE));
        const t0 = now();
        const res = await during(
          'after the change',
          waitForMirror(mSrc, pair.dst, [{ rel: FILE, check: 'content' }], {
            t0,
            timeoutMs,
            intervalMs: 5,
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
      const url = ctx.daemon.url(rel);
      place(basis, stage, join(rSrc, FILE));
      await rsyncPush(['-a', '--no-whole-file'], rSrc, url);
      place(edited, stage, join(rSrc, FILE));
      await settle();
      const res = await rsyncPush(['-a', '--no-whole-file', ...flags], rSrc, url);
      const cmp = compareTrees(rSrc, ctx.daemon.path(rel));
      if (!cmp.equal) throw new Error(`destination differs: ${cmp.diffs.join('; ')}`);
      side.times.push(res.ms);
      if (res.bytes !== null) side.bytes.push(res.bytes);
      logSample(side.name, res.ms, res.bytes);
    });

  const sides = {
    mimic: runMimic,
    rsync: () => runRsync(rsync, [], 'w1/r-dst'),
    fsync: () => (ctx.fsync ? runRsync(rsyncFsync, ['--fsync'], 'w1/rf-dst') : null),
  };
  const runs = runsFromEnv(3);
  for (let run = 0; run < runs; run++) {
    console.log(`  W1 run ${run + 1}/${runs}`);
    for (const s of sideOrder(run, ['mimic', 'rsync', 'fsync'])) await sides[s]();
  }

  const t = ctx.targets;
  return {
    rows: [
      timeRow('W1', 'time to mirrored', summary(mimic, 'times'), rsync.name, summary(rsync, 'times'), t.time),
      ...(ctx.fsync
        ? [
            timeRow(
              'W1',
              'time to mirrored',
              summary(mimic, 'times'),
              rsyncFsync.name,
              summary(rsyncFsync, 'times'),
              t.time,
            ),
          ]
        : []),
      bytesRow(
        'W1',
        'bytes on the wire',
        summary(mimic, 'bytes'),
        rsync.name,
        summary(rsync, 'bytes'),
        t.bytes,
      ),
    ],
    errors: [mimic, rsync, rsyncFsync].filter((s) => s.error).map((s) => `W1 ${s.name}: ${s.error}`),
  };
}
