// W7: deploys. Successive release trees (releases.mjs) land in the primary's folder by `rsync -a
// --delete rel-N/ primary/`, which writes each new file under a temporary name and renames it
// onto its final one: the usual deploy. mimic: from that rsync's exit until the mirror holds the
// release exactly. rsync: the same release pushed straight to its copies, `rsync -a --delete` to
// a local folder and into the daemon, timed as commands. Bytes: the primary's wire bytes from
// /metrics against rsync's "Total bytes sent".
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { compareTrees, fmtBytes, fmtMs, now, settle } from '../lib.mjs';
import { guarded, newSide, sideOrder } from '../replication/common.mjs';
import { metricsPair, primaryMetrics, rsyncStats, runToExit, whenAcked } from './exec.mjs';
import { makeReleases } from './releases.mjs';
import { newVerdicts, waitForRelease } from './wait-tree.mjs';

/** The deploy into the primary leaves mimic's folder marker alone (rsync's --delete would drop it). */
const DEPLOY = ['rsync', '-a', '--delete', '--exclude=/.mimic-folder'];

/** Throws with the first differences when `copy` is not `release`. */
function assertSame(release, copy, who) {
  const cmp = compareTrees(release, copy);
  if (!cmp.equal) throw new Error(`${who} differs from the release: ${cmp.diffs.join('; ')}`);
}

/**
 * Runs W7; ctx: { work, logDir, daemon, files, releases, timeoutMs }. Resolves with one result:
 * { workload, variant, mimic, local, daemon, rows } (rows: what the table shows).
 */
export async function runW7(ctx) {
  const dir = join(ctx.work, 'w7');
  const mSrc = join(dir, 'primary');
  const rLocal = join(dir, 'rsync-local');
  const daemonCopy = ctx.daemon.path('w7');
  const daemonUrl = ctx.daemon.url('w7');
  for (const d of [mSrc, rLocal, daemonCopy]) mkdirSync(d, { recursive: true });

  console.log(`\nW7: ${ctx.releases} deploys of a ${ctx.files.toLocaleString('en')}-file release tree`);
  const tGen = now();
  const rels = makeReleases(join(dir, 'releases'), { files: ctx.files, releases: ctx.releases });
  const bytes0 = [...rels[0].manifest.files.values()].reduce((s, f) => s + f.size, 0);
  console.log(`  release 0: ${rels[0].note}, ${fmtBytes(bytes0)}; all written in ${fmtMs(now() - tGen)}`);
  await runToExit([...DEPLOY, `${rels[0].dir}/`, `${mSrc}/`]);
  await rsyncStats(['-a', '--delete'], rels[0].dir, `${rLocal}/`);
  await rsyncStats(['-a', '--delete'], rels[0].dir, daemonUrl);

  const { pair, httpPort } = await metricsPair('w7', dir, mSrc, ctx.logDir);
  const check = () => pair.assertRunning();
  const verdicts = newVerdicts();
  const res = { workload: 'W7', variant: 'deploy (rsync -a --delete)', mimic: newSide('mimic') };
  res.mimic.deploy = [];
  res.mimic.total = [];
  res.mimic.ops = [];
  res.local = newSide('rsync local');
  res.daemon = newSide('rsync daemon');
  try {
    await guarded(res.mimic, 'mimic', async () => {
      const t0 = now();
      await pair.start();
      await waitForRelease(pair.dst, rels[0].manifest, {
        t0,
        timeoutMs: ctx.timeoutMs * 4,
        check,
        verdicts,
      }).catch((e) => {
        throw new Error(`the first copy (untimed): ${e.message}`);
      });
      await whenAcked(httpPort, { check });
      console.log(`  mirror holds release 0 after ${fmtMs(now() - t0)} (untimed)`);
    });

    const rsyncSide = (side, rel, dest, copy) =>
      guarded(side, side.name, async () => {
        await settle();
        const r = await rsyncStats(['-a', '--delete'], rel.dir, dest, { timeoutMs: ctx.timeoutMs });
        assertSame(rel.dir, copy, side.name);
        side.times.push(r.ms);
        if (r.sent !== null) side.bytes.push(r.sent);
        console.log(`    ${side.name}: ${fmtMs(r.ms)}, ${fmtBytes(r.sent)} sent`);
      });
    const sides = {
      mimic: (rel) =>
        guarded(res.mimic, 'mimic', async () => {
          await settle();
          const before = await primaryMetrics(httpPort);
          const deploy = await runToExit([...DEPLOY, `${rel.dir}/`, `${mSrc}/`], {
            timeoutMs: ctx.timeoutMs,
          });
          const { ms } = await waitForRelease(pair.dst, rel.manifest, {
            t0: deploy.exitAt,
            timeoutMs: ctx.timeoutMs,
            check,
            verdicts,
          });
          const after = await whenAcked(httpPort, { check });
          const sent = after.sent - before.sent;
          res.mimic.ops.push(after.ops - before.ops);
          assertSame(rel.dir, pair.dst, 'the mirror');
          res.mimic.times.push(ms);
          res.mimic.bytes.push(sent);
          res.mimic.deploy.push(deploy.ms);
          res.mimic.total.push(deploy.ms + ms);
          console.log(
            `    mimic: ${fmtMs(ms)} after the deploy into the primary (${fmtMs(deploy.ms)}), ${fmtBytes(sent)} sent in ${after.ops - before.ops} ops`,
          );
        }),
      local: (rel) => rsyncSide(res.local, rel, `${rLocal}/`, rLocal),
      daemon: (rel) => rsyncSide(res.daemon, rel, daemonUrl, daemonCopy),
    };
    for (let n = 1; n < rels.length; n++) {
      console.log(`  release ${n}/${ctx.releases}: ${rels[n].note}`);
      for (const s of sideOrder(n, ['mimic', 'local', 'daemon'])) await sides[s](rels[n]);
    }
  } finally {
    await pair.stop();
  }
  // Deploy and mirror, end to end, against rsync pushing the release itself.
  res.local.total = res.local.times;
  res.daemon.total = res.daemon.times;
  res.rows = [
    ['time to mirrored, after the deploy', 'times'],
    ['deploy into the primary + mirrored', 'total'],
    ['bytes sent', 'bytes'],
  ];
  res.extra = [
    ['deploy into the primary (local rsync)', 'deploy'],
    ['ops sent', 'ops'],
  ];
  return [res];
}
