// `npm run bench:scrape`: what watching a node costs. W4 (small files at 50/s, latency from the
// end of each write to the file complete on the mirror) with both nodes serving --http, once
// unobserved and once with /metrics and /api/status of both nodes fetched every 100 ms (ten
// times Prometheus' usual 1 s floor); prints both latencies, their ratio, and what a scrape
// takes and weighs.
//   node bench/scrape.mjs [--quick]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  fmtMs,
  freePort,
  now,
  percentile,
  removeWork,
  runsFromEnv,
  settle,
  settleAfterCleanUp,
  sleep,
  WORK_ROOT,
} from './lib.mjs';
import { MimicPair } from './replication/sides.mjs';
import { ready, writeAndWatch } from './replication/w4.mjs';

const { values: opts } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const count = opts.quick ? 100 : 300;
const work = join(WORK_ROOT, 'scrape');
removeWork(work);
await settleAfterCleanUp();
mkdirSync(join(work, 'logs'), { recursive: true });

/** Fetches every URL every `everyMs` until stopped; the time and size of each answer. */
function scraper(urls, everyMs) {
  const times = [];
  let bytes = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = now();
      for (const u of urls) {
        const res = await fetch(u);
        const body = await res.text();
        if (res.status !== 200) throw new Error(`${u}: ${res.status}`);
        bytes = Math.max(bytes, body.length);
      }
      times.push((now() - t0) / urls.length);
      await sleep(Math.max(0, everyMs - (now() - t0)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { times, bytes };
    },
  };
}

const sides = { quiet: [], scraped: [] };
const scrapeTimes = [];
let scrapeBytes = 0;
const runs = runsFromEnv(3);
for (let run = 0; run < runs; run++) {
  for (const mode of run % 2 === 0 ? ['quiet', 'scraped'] : ['scraped', 'quiet']) {
    const dir = join(work, `${mode}-${run}`);
    const [pHttp, mHttp] = [await freePort(), await freePort()];
    const pair = new MimicPair({
      name: `scrape-${mode}-${run}`,
      src: join(dir, 'src'),
      dst: join(dir, 'dst'),
      primaryState: join(dir, 'state'),
      logDir: join(work, 'logs'),
      primaryArgs: ['--http', `127.0.0.1:${pHttp}`],
      mirrorArgs: ['--http', `127.0.0.1:${mHttp}`],
    });
    mkdirSync(pair.src, { recursive: true });
    await pair.start();
    try {
      await pair.waitInSync(60_000);
      await ready(pair.src, pair.dst, `${mode}${run}`, () => pair.assertRunning());
      await settle();
      const urls = [pHttp, mHttp].flatMap((p) => [
        `http://127.0.0.1:${p}/metrics`,
        `http://127.0.0.1:${p}/api/status`,
      ]);
      const s = mode === 'scraped' ? scraper(urls, 100) : null;
      const { latencies } = await writeAndWatch(pair.src, pair.dst, count, `${mode}${run}`, run);
      if (latencies.length < count)
        throw new Error(`${mode}: ${count - latencies.length} files never arrived`);
      sides[mode].push(...latencies);
      if (s) {
        const r = await s.stop();
        scrapeTimes.push(...r.times);
        scrapeBytes = Math.max(scrapeBytes, r.bytes);
      }
      console.log(
        `  run ${run + 1}/${runs} ${mode}: p50 ${fmtMs(percentile(latencies, 50))}, p99 ${fmtMs(percentile(latencies, 99))}`,
      );
    } finally {
      await pair.stop();
    }
  }
}
removeWork(work);

const row = (p) => {
  const q = percentile(sides.quiet, p);
  const s = percentile(sides.scraped, p);
  return `  W4 latency p${p}: unobserved ${fmtMs(q)}, scraped every 100 ms ${fmtMs(s)}, ratio ${(s / q).toFixed(2)}`;
};
console.log(`\nwatching a node (${runs} runs of ${count} files each way)`);
console.log(row(50));
console.log(row(99));
console.log(
  `  one request (/metrics or /api/status): p50 ${fmtMs(percentile(scrapeTimes, 50))}, p99 ${fmtMs(percentile(scrapeTimes, 99))}; largest answer ${scrapeBytes} bytes`,
);
