// `npm run bench:wan`: W1 and W3 over a slow, distant link, mimic (plain and --compress) against
// rsync -a and rsync -az into an rsync daemon, all through the same shaping proxy.
//   node bench/wan.mjs [--only W1,W3] [--quick] [--keep] [--mbit 20] [--rtt-ms 50]
// Env: BENCH_RUNS (runs per workload; default 3, 1 with --quick), BENCH_SETTLE_MS,
// BENCH_AFTER_CLEAN_UP_MS (see bench/README.md).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  errorText,
  fmtBytes,
  fmtMs,
  fmtRatio,
  MIMIC_BIN,
  median,
  mimicInstalled,
  printTable,
  ratio,
  removeWork,
  runsFromEnv,
  settle,
  settleAfterCleanUp,
  sharedW2Tree,
  WORK_ROOT,
} from './lib.mjs';
import { RsyncDaemon } from './replication/sides.mjs';
import { ShapedLink } from './wan/link.mjs';
import { runW1, runW3, SIDES } from './wan/workloads.mjs';

const WORKLOADS = { W1: runW1, W3: runW3 };
const BASELINE = 'rsync -az';

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    mbit: { type: 'string', default: '20' },
    'rtt-ms': { type: 'string', default: '50' },
  },
});
const selected = opts.only ? opts.only.split(',').map((s) => s.trim().toUpperCase()) : Object.keys(WORKLOADS);
for (const w of selected) {
  if (!WORKLOADS[w]) {
    console.error(`unknown workload ${w}; pick from ${Object.keys(WORKLOADS).join(', ')}`);
    process.exit(2);
  }
}
const link = { mbit: Number(opts.mbit), rttMs: Number(opts['rtt-ms']) };
if (!(link.mbit > 0) || !(link.rttMs >= 0)) {
  console.error('--mbit must be > 0 and --rtt-ms >= 0');
  process.exit(2);
}

const work = join(WORK_ROOT, 'wan');
if (existsSync(work)) {
  console.log(`removing leftovers in ${work}`);
  removeWork(work, { manyFiles: true });
}
await settleAfterCleanUp();
const logDir = join(work, 'logs');
mkdirSync(logDir, { recursive: true });

const runs = runsFromEnv(opts.quick ? 1 : 3);
console.log(
  `mimic WAN bench${opts.quick ? ' (quick sizes)' : ''}: ${selected.join(', ')}; link ${link.mbit} Mbit/s ` +
    `each way, ${link.rttMs} ms round trip (a shaping proxy on 127.0.0.1); ${runs} run(s) per side`,
);
if (!mimicInstalled()) console.log(`note: ${MIMIC_BIN} not found; mimic sides will fail, rsync still runs`);

const daemon = await RsyncDaemon.start(work);
const rsyncLink = await ShapedLink.start({
  target: daemon.port,
  ...link,
  logFile: join(logDir, 'rsync-link.log'),
});
const ctx = {
  work,
  logDir,
  quick: opts.quick,
  runs,
  daemon,
  rsyncLink,
  link,
  /** The W2 tree, written once and shared by W2 and W3 (read-only for both). */
  tree: sharedW2Tree(work, opts.quick, settle),
};

const results = [];
const errors = [];
try {
  for (const w of selected) {
    console.log(`\n${w}`);
    try {
      const sides = await WORKLOADS[w](ctx);
      results.push([w, sides]);
      for (const s of Object.values(sides)) if (s.error) errors.push(`${w} ${s.name}: ${s.error}`);
    } catch (e) {
      errors.push(`${w}: ${errorText(e)}`);
      console.log(`  ${w} FAILED: ${errorText(e)}`);
    }
  }
} finally {
  await rsyncLink.stop();
  await daemon.stop();
}

console.log(
  `\nover ${link.mbit} Mbit/s and ${link.rttMs} ms (medians; ratio = side / ${BASELINE}, lower is better)\n`,
);
const rows = [];
for (const [w, sides] of results) {
  const base = sides[BASELINE];
  const bt = median(base.times);
  const bb = median(base.bytes);
  for (const name of SIDES) {
    const s = sides[name];
    const t = s.error && s.times.length === 0 ? null : median(s.times);
    const b = s.error && s.bytes.length === 0 ? null : median(s.bytes);
    rows.push([
      w,
      name,
      s.error && t === null ? 'error' : fmtMs(t),
      fmtBytes(b),
      name === BASELINE ? '1.00' : fmtRatio(ratio(t, bt)),
      name === BASELINE ? '1.00' : fmtRatio(ratio(b, bb)),
    ]);
  }
}
printTable(['workload', 'side', 'time', 'wire bytes', `time / ${BASELINE}`, `bytes / ${BASELINE}`], rows);
if (errors.length > 0) {
  console.log('\nfailures:');
  for (const e of errors) console.log(`  ${e.split('\n').join('\n    ')}`);
}

if (opts.keep) console.log(`\nkept ${work}`);
else removeWork(work, { manyFiles: selected.includes('W3') });
