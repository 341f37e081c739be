// `npm run bench`: W1–W4 and peak RSS, mimic against rsync (daemon on loopback) and lsyncd.
//   node bench/replication.mjs [--only W1,W2,W3,W4,RSS] [--quick] [--skip-2g] [--keep]
// Env: BENCH_RUNS (runs per workload), BENCH_SETTLE_MS (pause after each sync, default 3000),
// BENCH_AFTER_CLEAN_UP_MS (wait after the last run's clean-up, default 240000).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  comparisonRow,
  errorText,
  MIMIC_BIN,
  mimicInstalled,
  printTable,
  removeWork,
  settle,
  settleAfterCleanUp,
  sharedW2Tree,
  WORK_ROOT,
} from './lib.mjs';
import { runPeakRss } from './replication/peak-rss.mjs';
import { RsyncDaemon, rsyncHasFsync } from './replication/sides.mjs';
import { runW1 } from './replication/w1.mjs';
import { runW2 } from './replication/w2.mjs';
import { runW3 } from './replication/w3.mjs';
import { runW4 } from './replication/w4.mjs';

/** Upper bounds on mimic / baseline. */
// The targets, as mimic/baseline in the same run.
const TARGETS = { time: 1.0, bytes: 1.5, w2Time: 1.5, w3Bytes: 1.0, latency: 1.0 };
const WORKLOADS = { W1: runW1, W2: runW2, W3: runW3, W4: runW4, RSS: runPeakRss };

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'skip-2g': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const selected = opts.only
  ? opts.only.split(',').map((s) => s.trim().toUpperCase())
  : Object.keys(WORKLOADS).filter((w) => w !== 'RSS' || !opts['skip-2g']);
for (const w of selected) {
  if (!WORKLOADS[w]) {
    console.error(`unknown workload ${w}; pick from ${Object.keys(WORKLOADS).join(', ')}`);
    process.exit(2);
  }
}

const work = join(WORK_ROOT, 'replication');
if (existsSync(work)) {
  console.log(`removing leftovers in ${work}`);
  removeWork(work, { manyFiles: true });
}
await settleAfterCleanUp();
mkdirSync(work, { recursive: true });
const logDir = join(work, 'logs');
mkdirSync(logDir, { recursive: true });

console.log(`mimic replication bench${opts.quick ? ' (quick sizes)' : ''}: ${selected.join(', ')}`);
if (!mimicInstalled())
  console.log(`note: ${MIMIC_BIN} not found; mimic sides will fail, baselines still run`);
const fsync = await rsyncHasFsync();
if (!fsync) console.log('note: this rsync has no --fsync; the durable baseline is skipped');

const daemon = await RsyncDaemon.start(work);
const ctx = {
  work,
  logDir,
  quick: opts.quick,
  daemon,
  fsync,
  targets: TARGETS,
  /** The W2 tree, written once and shared by W2 and W3 (read-only for both). */
  tree: sharedW2Tree(work, opts.quick, settle),
};

const rows = [];
const errors = [];
try {
  for (const w of selected) {
    console.log(`\n${w}`);
    try {
      const res = await WORKLOADS[w](ctx);
      rows.push(...res.rows);
      errors.push(...res.errors);
    } catch (e) {
      errors.push(`${w}: ${errorText(e)}`);
      console.log(`  ${w} FAILED: ${errorText(e)}`);
    }
  }
} finally {
  await daemon.stop();
}

console.log('\nmimic against the baselines (medians; ratio = mimic / baseline, lower is better)\n');
printTable(
  ['workload', 'metric', 'mimic', 'baseline', 'baseline value', 'ratio', 'target', ''],
  rows.map((r) => {
    if (!r.fmt) return [r.w, r.metric, r.mimic, r.baseline, r.base, '—', '—', ''];
    const [w, metric, m, b, ratio, target, verdict] = comparisonRow(
      [r.w, r.metric],
      r.mimic,
      r.base,
      r.target,
      r.fmt,
    );
    return [w, metric, m, r.baseline, b, ratio, target, verdict === '—' ? '' : verdict];
  }),
);
if (errors.length > 0) {
  console.log('\nfailures:');
  for (const e of errors) console.log(`  ${e.split('\n').join('\n    ')}`);
}

if (opts.keep) console.log(`\nkept ${work}`);
else removeWork(work, { manyFiles: true });
