// W1 and W3 over a shaped link: each side's set-up runs at loopback speed, then the link is
// shaped and the change timed. mimic: from the change until the mirror holds it exactly (as in
// replication.mjs). rsync: the push into the daemon, timed as a command. Wire bytes: what the
// link carried both ways during the timed part, for every side alike.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  applyW1Edit,
  applyW3Edit,
  compareTrees,
  expectEdit,
  freePort,
  MiB,
  now,
  runChecked,
  settle,
  waitForMirror,
  writeRandomFile,
} from '../lib.mjs';
import { during, guarded, logSample, newSide, place, sideOrder } from '../replication/common.mjs';
import { localSync, MimicPair, rsyncPush, STALL_MS } from '../replication/sides.mjs';
import { ShapedLink } from './link.mjs';

const FILE = 'file.bin';

/** `src` made W2's tree again, keeping the folder marker its primary put there. */
async function resetSource(base, src) {
  await runChecked(['rsync', '-a', '--delete', '--exclude=/.mimic-folder', `${base}/`, `${src}/`], {
    rss: false,
  });
}

/** The four sides of a workload, in the order of the first run. */
export const SIDES = ['mimic', 'mimic --compress', 'rsync -a', 'rsync -az'];

/** A mimic pair whose mirror dials its primary through a shaped link of its own. */
async function shapedPair(ctx, dir, name, primaryArgs) {
  const port = await freePort();
  const link = await ShapedLink.start({
    target: port,
    ...ctx.link,
    logFile: join(ctx.logDir, `${name}-link.log`),
  });
  const pair = new MimicPair({
    name,
    src: join(dir, `${name}-src`),
    dst: join(dir, `${name}-dst`),
    primaryState: join(dir, `${name}-state`),
    logDir: ctx.logDir,
    primaryArgs,
    dialPort: link.port,
  });
  mkdirSync(pair.src, { recursive: true });
  return { pair, link, port };
}

/**
 * The timed part of one side: shaping on and counts reset, `change()` made, `arrived()` awaited;
 * then the link's bytes both ways since the reset, and shaping off again.
 */
async function timedOverLink(link, change, arrived) {
  await link.shape(true);
  try {
    await link.stats({ reset: true });
    const t0 = now();
    const changed = await change();
    const ms = await arrived(t0, changed);
    const { total } = await link.stats();
    return { ms, bytes: total };
  } finally {
    await link.shape(false);
  }
}

/** One run of one mimic side: `prepare` the source, start, catch up untimed, then the change. */
function mimicRun(side, { pair, link, port }, { prepare, change, expected, timeoutMs, syncMs, poll }) {
  return guarded(side, side.name, async () => {
    await prepare(pair.src);
    await pair.start({ port });
    try {
      await pair.waitInSync(syncMs);
      await settle();
      const res = await timedOverLink(link, change, async (t0, changed) => {
        const r = await during(
          'after the change',
          waitForMirror(pair.src, pair.dst, expected(changed), {
            t0,
            timeoutMs,
            stallMs: STALL_MS,
            intervalMs: poll,
            check: () => pair.assertRunning(),
          }),
        );
        // Counted until every ack is back, so the bytes cover the whole exchange.
        await pair.waitAcked(timeoutMs);
        return r.ms;
      });
      side.times.push(res.ms);
      side.bytes.push(res.bytes);
      logSample(side.name, res.ms, res.bytes);
    } finally {
      await pair.stop();
    }
  });
}

/** One run of one rsync side: reset source and destination untimed, then the push over the link. */
function rsyncRun(ctx, side, flags, { prepare, src, dst, rel, timeoutMs }) {
  return guarded(side, side.name, async () => {
    await prepare();
    await settle();
    const url = `rsync://127.0.0.1:${ctx.rsyncLink.port}/bench/${rel}/`;
    const res = await timedOverLink(
      ctx.rsyncLink,
      () => null,
      async () => (await rsyncPush(flags, src, url, timeoutMs)).ms,
    );
    const cmp = compareTrees(src, dst);
    if (!cmp.equal) throw new Error(`destination differs: ${cmp.diffs.join('; ')}`);
    side.times.push(res.ms);
    side.bytes.push(res.bytes);
    logSample(side.name, res.ms, res.bytes);
  });
}

async function runSides(label, runs, run) {
  const sides = Object.fromEntries(SIDES.map((s) => [s, newSide(s)]));
  for (let i = 0; i < runs; i++) {
    console.log(`  ${label} run ${i + 1}/${runs}`);
    for (const s of sideOrder(i, SIDES)) await run[s](sides[s]);
  }
  return sides;
}

/** W1: one large file, 64 scattered 4 KiB overwrites, a 1,000-byte insertion, a 500-byte deletion. */
export async function runW1(ctx) {
  const dir = join(ctx.work, 'w1');
  const size = ctx.quick ? 16 * MiB : 256 * MiB;
  const basis = join(dir, 'basis.bin');
  const edited = join(dir, 'edited.bin');
  const stage = join(dir, 'stage.bin');
  const rSrc = join(dir, 'r-src');
  for (const d of [rSrc, ctx.daemon.path('w1')]) mkdirSync(d, { recursive: true });
  console.log(`  W1: ${size / MiB} MiB file`);
  writeRandomFile(basis, size, 1);
  applyW1Edit(basis, edited, size, 1);
  const plain = await shapedPair(ctx, dir, 'w1-m', []);
  const packed = await shapedPair(ctx, dir, 'w1-mz', ['--compress']);
  const timeoutMs = ctx.quick ? 120_000 : 600_000;
  const mimic = (side, p) =>
    mimicRun(side, p, {
      prepare: async (src) => place(basis, stage, join(src, FILE)),
      change: async () => place(edited, stage, join(p.pair.src, FILE)),
      expected: () => [{ rel: FILE, check: 'content' }],
      timeoutMs,
      syncMs: timeoutMs,
      poll: 5,
    });
  const rsync = (side, flags, rel) =>
    rsyncRun(ctx, side, ['-a', '--no-whole-file', ...flags], {
      prepare: async () => {
        place(basis, stage, join(rSrc, FILE));
        await rsyncPush(['-a', '--no-whole-file'], rSrc, ctx.daemon.url(rel));
        place(edited, stage, join(rSrc, FILE));
      },
      src: rSrc,
      dst: ctx.daemon.path(rel),
      rel,
      timeoutMs,
    });
  try {
    return await runSides('W1', ctx.runs, {
      mimic: (s) => mimic(s, plain),
      'mimic --compress': (s) => mimic(s, packed),
      'rsync -a': (s) => rsync(s, [], 'w1/r-dst'),
      'rsync -az': (s) => rsync(s, ['-z'], 'w1/rz-dst'),
    });
  } finally {
    await plain.link.stop();
    await packed.link.stop();
  }
}

/** W3: W2's tree, then 1% of the files edited in place, and deletes, renames and new files. */
export async function runW3(ctx) {
  const dir = join(ctx.work, 'w3');
  const base = await ctx.tree();
  const rSrc = join(dir, 'r-src');
  mkdirSync(ctx.daemon.path('w3'), { recursive: true });
  const plain = await shapedPair(ctx, dir, 'w3-m', []);
  const packed = await shapedPair(ctx, dir, 'w3-mz', ['--compress']);
  const timeoutMs = ctx.quick ? 120_000 : 600_000;
  const mimic = (side, p) =>
    mimicRun(side, p, {
      prepare: (src) => resetSource(base, src),
      change: async () => applyW3Edit(p.pair.src),
      expected: (edit) => expectEdit(edit),
      timeoutMs,
      syncMs: ctx.quick ? 120_000 : 900_000,
      poll: 10,
    });
  const rsync = (side, flags, rel) =>
    rsyncRun(ctx, side, ['-a', '--delete', ...flags], {
      prepare: async () => {
        await localSync(base, rSrc);
        await localSync(base, ctx.daemon.path(rel));
        applyW3Edit(rSrc);
      },
      src: rSrc,
      dst: ctx.daemon.path(rel),
      rel,
      timeoutMs,
    });
  try {
    return await runSides('W3', ctx.runs, {
      mimic: (s) => mimic(s, plain),
      'mimic --compress': (s) => mimic(s, packed),
      'rsync -a': (s) => rsync(s, [], 'w3/r-dst'),
      'rsync -az': (s) => rsync(s, ['-z'], 'w3/rz-dst'),
    });
  } finally {
    await plain.link.stop();
    await packed.link.stop();
  }
}
