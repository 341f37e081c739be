// W4: small files (1–8 KiB) written one by one at 50 per second; for each, the time from the end
// of its write in the source until the mirror holds it with full content. The destination is
// watched with fs.watch and also polled every 2 ms. mimic against lsyncd (default.rsync,
// delay = 0, local target).
import { mkdirSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  byteStream,
  fmtMs,
  KiB,
  now,
  percentile,
  rng,
  runsFromEnv,
  settle,
  sleep,
  waitForMirror,
} from '../lib.mjs';
import { guarded, newSide, sideOrder, timeRow } from './common.mjs';
import { Lsyncd, MimicPair } from './sides.mjs';

const RATE = 50;

export async function runW4(ctx) {
  const dir = join(ctx.work, 'w4');
  const count = ctx.quick ? 100 : 300;
  const pair = new MimicPair({
    name: 'w4',
    src: join(dir, 'm-src'),
    dst: join(dir, 'm-dst'),
    primaryState: join(dir, 'm-state'),
    logDir: ctx.logDir,
  });
  const lSrc = join(dir, 'l-src');
  const lDst = join(dir, 'l-dst');
  for (const d of [pair.src, lSrc]) mkdirSync(d, { recursive: true });
  const mimic = { ...newSide('mimic'), arrived: 0, sent: 0 };
  const lsyncd = { ...newSide('lsyncd'), arrived: 0, sent: 0 };

  // A file that never arrived counts as an infinite latency, so losses show in the percentiles.
  const record = (side, res) => {
    side.times.push(...res.latencies, ...Array(count - res.latencies.length).fill(Number.POSITIVE_INFINITY));
    side.arrived += res.latencies.length;
    side.sent += count;
    console.log(
      `    ${side.name}: ${res.latencies.length}/${count} arrived within 30 s of the last write,` +
        ` p50 ${fmtMs(percentile(side.times.slice(-count), 50))}, p99 ${fmtMs(percentile(side.times.slice(-count), 99))}`,
    );
  };

  const runMimic = (run) =>
    guarded(mimic, 'mimic', async () => {
      await pair.start();
      try {
        await pair.waitInSync(60_000);
        await ready(pair.src, pair.dst, `m${run}`, () => pair.assertRunning());
        await settle();
        record(mimic, await writeAndWatch(pair.src, pair.dst, count, `m${run}`, run));
      } finally {
        await pair.stop();
      }
    });

  const runLsyncd = (run) =>
    guarded(lsyncd, 'lsyncd', async () => {
      const l = Lsyncd.start({ src: lSrc, dst: lDst, workDir: ctx.logDir });
      try {
        await ready(lSrc, lDst, `l${run}`, () => l.assertRunning());
        await settle();
        record(lsyncd, await writeAndWatch(lSrc, lDst, count, `l${run}`, run));
      } finally {
        await l.stop();
      }
    });

  const runs = runsFromEnv(3);
  for (let run = 0; run < runs; run++) {
    console.log(`  W4 run ${run + 1}/${runs}: ${count} files at ${RATE}/s`);
    const sides = { mimic: () => runMimic(run), lsyncd: () => runLsyncd(run) };
    for (const s of sideOrder(run, ['mimic', 'lsyncd'])) await sides[s]();
  }

  const t = ctx.targets;
  const pct = (side, p) => (side.error && side.times.length === 0 ? 'error' : percentile(side.times, p));
  const arrivals = (s) => (s.error && s.sent === 0 ? 'error' : `${s.arrived}/${s.sent}`);
  return {
    rows: [
      timeRow('W4', 'latency p50', pct(mimic, 50), lsyncd.name, pct(lsyncd, 50), t.latency),
      timeRow('W4', 'latency p99', pct(mimic, 99), lsyncd.name, pct(lsyncd, 99), t.latency),
      {
        w: 'W4',
        metric: 'files arrived',
        mimic: arrivals(mimic),
        baseline: lsyncd.name,
        base: arrivals(lsyncd),
      },
    ],
    errors: [mimic, lsyncd].filter((s) => s.error).map((s) => `W4 ${s.name}: ${s.error}`),
  };
}

/**
 * Make sure the replicator is past its start-up and reacting to events: two marker files, the second
 * written only after the first arrived.
 */
export async function ready(src, dst, tag, check) {
  for (const k of [1, 2]) {
    const rel = `ready-${tag}-${k}.txt`;
    writeFileSync(join(src, rel), `${tag} ${k}\n`);
    await waitForMirror(src, dst, [{ rel, check: 'content' }], { timeoutMs: 60_000, check });
  }
}

/**
 * Write `count` files at RATE per second into src (the same sizes and bytes for both sides of a
 * run); resolve with each one's latency to dst.
 */
export async function writeAndWatch(src, dst, count, tag, seed) {
  const r = rng(40 + seed);
  const bytes = byteStream(`w4-${seed}`);
  const files = Array.from({ length: count }, (_, i) => ({
    name: `w4-${tag}-${String(i).padStart(4, '0')}.dat`,
    data: bytes.take(KiB + r.int(7 * KiB + 1)),
    written: 0,
  }));
  const pending = new Map();
  const latencies = [];
  const probe = (name) => {
    const f = pending.get(name);
    if (!f) return;
    const st = statSync(join(dst, name), { throwIfNoEntry: false });
    if (!st || st.size !== f.data.length) return;
    let got;
    try {
      got = readFileSync(join(dst, name));
    } catch {
      return;
    }
    if (!got.equals(f.data)) return;
    latencies.push(now() - f.written);
    pending.delete(name);
  };
  const watcher = watch(dst, (_event, name) => name && probe(String(name)));
  let polling = true;
  const poller = (async () => {
    while (polling) {
      for (const name of pending.keys()) probe(name);
      await sleep(2);
    }
  })();

  const start = now() + 20;
  for (const [i, f] of files.entries()) {
    const wait = start + (i * 1000) / RATE - now();
    if (wait > 0) await sleep(wait);
    writeFileSync(join(src, f.name), f.data);
    f.written = now();
    pending.set(f.name, f);
  }
  const deadline = now() + 30_000;
  while (pending.size > 0 && now() < deadline) await sleep(10);
  polling = false;
  await poller;
  watcher.close();
  return { latencies };
}
