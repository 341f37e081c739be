// W6: one big file rewritten in place. The file is on the primary and the mirror (and on rsync's
// source and destinations), in step; then its next version (1-5% of its blocks changed) is
// written over it through the same inode: by `cp`, or by a slow writer that takes about 2 s.
// mimic: from the writer's exit until the mirror's file has the new size and bytes. rsync:
// after the same write onto its source, `rsync -a --no-whole-file` to a local folder and into
// the daemon, timed as commands. Versions follow one another (v1 over v0, v2 over v1, ...) on
// every side, so no run needs a reset.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtBytes, fmtMs, MiB, now, settle } from '../lib.mjs';
import { guarded, newSide, sideOrder } from '../replication/common.mjs';
import { fileHash, metricsPair, primaryMetrics, rsyncStats, runToExit, whenAcked } from './exec.mjs';
import { firstVersion, nextVersion } from './versions.mjs';
import { waitForVersion, watchShortest } from './wait-file.mjs';

const FILE = 'f.bin';
const SLOW_WRITER = fileURLToPath(new URL('./slow-writer.mjs', import.meta.url));
const RSYNC_FLAGS = ['-a', '--no-whole-file'];

/** The two ways a new version lands: argv writing `from` over `to` in place. */
const WRITERS = {
  cp: { label: 'cp in place', argv: (from, to) => ['cp', from, to] },
  slow: {
    label: 'slow writer (~2 s)',
    argv: (from, to, slowMs) => [process.execPath, SLOW_WRITER, from, to, String(slowMs)],
  },
};

/**
 * Runs W6; ctx: { work, logDir, daemon, mib, rounds, timeoutMs, slowMs }. Resolves with one
 * result per writer: { workload, variant, mimic, local, daemon } (sides as newSide() makes them).
 */
export async function runW6(ctx) {
  const dir = join(ctx.work, 'w6');
  const size = ctx.mib * MiB;
  const mSrc = join(dir, 'primary');
  const rSrc = join(dir, 'rsync-src');
  const rLocal = join(dir, 'rsync-local');
  for (const d of [mSrc, rSrc, rLocal, ctx.daemon.path('w6')]) mkdirSync(d, { recursive: true });
  const pristine = [join(dir, 'version-a.bin'), join(dir, 'version-b.bin')];
  const daemonUrl = ctx.daemon.url('w6');

  console.log(`\nW6: a ${ctx.mib} MiB file rewritten in place, ${ctx.rounds} rounds per writer`);
  let cur = { path: pristine[0], ...firstVersion(pristine[0], size) };
  for (const d of [mSrc, rSrc]) copyFileSync(cur.path, join(d, FILE));
  await rsyncStats(RSYNC_FLAGS, rSrc, `${rLocal}/`);
  await rsyncStats(RSYNC_FLAGS, rSrc, daemonUrl);

  const { pair, httpPort } = await metricsPair('w6', dir, mSrc, ctx.logDir);
  const check = () => pair.assertRunning();
  const mirrorFile = join(pair.dst, FILE);
  const results = [];
  /** Starts the pair (again) and waits, untimed, until the mirror holds the current version. */
  const inStep = async (what) => {
    await pair.start();
    const t0 = now();
    await waitForVersion(mirrorFile, { size, hash: cur.hash, t0, timeoutMs: ctx.timeoutMs * 4, check }).catch(
      (e) => {
        throw new Error(`${what} (untimed): ${e.message}`);
      },
    );
    await whenAcked(httpPort, { check });
    return now() - t0;
  };
  // A pair that cannot start or catch up fails mimic's side of every later round.
  const setup = newSide('mimic');
  try {
    await guarded(setup, 'mimic', () => inStep('the first copy'));

    let n = 0;
    for (const writer of Object.values(WRITERS)) {
      const res = { workload: 'W6', variant: writer.label, mimic: newSide('mimic') };
      res.mimic.ops = [];
      res.mimic.cut = [];
      res.extra = [
        ['ops sent (writes of the file)', 'ops'],
        ['rounds with a cut-down copy on the mirror', 'cut', 'count'],
      ];
      res.local = newSide('rsync local');
      res.daemon = newSide('rsync daemon');
      res.mimic.error = setup.error;
      results.push(res);
      const write = (to) => runToExit(writer.argv(cur.path, to, ctx.slowMs), { timeoutMs: ctx.timeoutMs });

      const rsyncSide = (side, dest, copy) =>
        guarded(side, side.name, async () => {
          await settle();
          await write(join(rSrc, FILE));
          const r = await rsyncStats(RSYNC_FLAGS, rSrc, dest, { timeoutMs: ctx.timeoutMs });
          if (fileHash(copy) !== cur.hash) throw new Error(`${copy} does not hold the new version`);
          side.times.push(r.ms);
          if (r.sent !== null) side.bytes.push(r.sent);
          console.log(`    ${side.name}: ${fmtMs(r.ms)}, ${fmtBytes(r.sent)} sent`);
        });

      const sides = {
        mimic: () =>
          guarded(res.mimic, 'mimic', async () => {
            await settle();
            const before = await primaryMetrics(httpPort);
            const shortest = watchShortest(mirrorFile);
            const arrived = write(join(mSrc, FILE)).then(({ exitAt }) =>
              waitForVersion(mirrorFile, {
                size,
                hash: cur.hash,
                t0: exitAt,
                timeoutMs: ctx.timeoutMs,
                check,
              }),
            );
            // The watch ends either way, so a failed round leaves no poller behind.
            const least = await arrived.then(
              () => shortest.stop(),
              async (e) => {
                await shortest.stop();
                throw e;
              },
            );
            const { ms } = await arrived;
            const after = await whenAcked(httpPort, { check });
            const bytes = after.sent - before.sent;
            res.mimic.times.push(ms);
            res.mimic.bytes.push(bytes);
            res.mimic.ops.push(after.ops - before.ops);
            res.mimic.cut.push(least < size ? 1 : 0);
            console.log(
              `    mimic: ${fmtMs(ms)}, ${fmtBytes(bytes)} sent in ${after.ops - before.ops} ops${least < size ? `; the mirror's copy was cut to ${fmtBytes(Math.max(0, least))} meanwhile` : ''}`,
            );
          }),
        local: () => rsyncSide(res.local, `${rLocal}/`, join(rLocal, FILE)),
        daemon: () => rsyncSide(res.daemon, daemonUrl, join(ctx.daemon.path('w6'), FILE)),
      };
      for (let round = 0; round < ctx.rounds; round++) {
        n++;
        const path = pristine[n % 2];
        cur = { path, ...nextVersion(cur.path, path, size, n) };
        console.log(
          `  ${writer.label}, round ${round + 1}/${ctx.rounds}: version ${n}, ${cur.pct}% of blocks changed`,
        );
        for (const s of sideOrder(n, ['mimic', 'local', 'daemon'])) {
          const failed = res.mimic.error;
          await sides[s]();
          if (s !== 'mimic' || failed || !res.mimic.error) continue;
          // A primary still at work on the lost change would load the baselines' runs: a
          // restart, and the mirror caught up (untimed) before the run goes on.
          await pair.stop();
          try {
            console.log(`    mimic restarted: the mirror caught up in ${fmtMs(await inStep('the restart'))}`);
          } catch (e) {
            setup.error = `the restart after a failed round: ${e.message}`;
            console.log(`    mimic restart FAILED: ${e.message}`);
          }
        }
      }
    }
  } finally {
    await pair.stop();
  }
  return results;
}
