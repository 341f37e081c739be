// `npm run bench:writes`: how mimic follows the ways applications really write, beside rsync
// (to a local folder and into the rsync daemon on loopback).
//   W6: a big file rewritten in place (cp over it, and a slow writer taking about 2 s).
//   W7: release trees deployed into the primary's folder with `rsync -a --delete`.
//   node bench/writes.mjs [--mib N] [--rounds N] [--releases N] [--files N] [--only W6,W7]
//                         [--timeout SECONDS] [--quick] [--keep]
// --timeout: how long a mirror may take to hold one change (default 60 s) before that side
// fails. --quick: 32 MiB, 2 rounds, 3 releases of 600 files. Env: BENCH_SETTLE_MS,
// BENCH_AFTER_CLEAN_UP_MS (see bench/README.md).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  endRun,
  errorText,
  MIMIC_BIN,
  mimicInstalled,
  now,
  removeWork,
  settleAfterCleanUp,
  WORK_ROOT,
} from './lib.mjs';
import { RsyncDaemon } from './replication/sides.mjs';
import { failures, printResults } from './writes/report.mjs';
import { runW6 } from './writes/w6.mjs';
import { runW7 } from './writes/w7.mjs';

const { values: opts } = parseArgs({
  options: {
    mib: { type: 'string' },
    rounds: { type: 'string' },
    releases: { type: 'string' },
    files: { type: 'string' },
    only: { type: 'string' },
    timeout: { type: 'string' },
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const count = (flag, fallback, least) => {
  const value = opts[flag];
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < least) {
    console.error(`--${flag} ${value}: expected a whole number, at least ${least}`);
    process.exit(2);
  }
  return n;
};
const quick = opts.quick;
const only = new Set((opts.only ?? 'W6,W7').toUpperCase().split(','));
for (const w of only) {
  if (w !== 'W6' && w !== 'W7') {
    console.error(`--only ${opts.only}: expected W6, W7 or both`);
    process.exit(2);
  }
}
const ctx = {
  mib: count('mib', quick ? 32 : 256, 1),
  rounds: count('rounds', quick ? 2 : 3, 1),
  releases: count('releases', quick ? 3 : 5, 1),
  files: count('files', quick ? 600 : 3000, 50),
  // How long a mirror may take to hold one change before the run fails.
  timeoutMs: count('timeout', 60, 1) * 1000,
  slowMs: 2000,
};

const started = now();
const work = join(WORK_ROOT, 'writes');
if (existsSync(work)) {
  console.log(`removing leftovers in ${work}`);
  removeWork(work, { manyFiles: true });
}
const waitStart = now();
await settleAfterCleanUp();
const waitedMs = now() - waitStart;
ctx.work = work;
ctx.logDir = join(work, 'logs');
mkdirSync(ctx.logDir, { recursive: true });
console.log(`mimic writes bench: ${[...only].join(', ')}`);
if (!mimicInstalled()) console.log(`note: ${MIMIC_BIN} not found; the mimic side will fail`);

const results = [];
const errors = [];
ctx.daemon = await RsyncDaemon.start(work);
try {
  for (const [name, run] of [
    ['W6', runW6],
    ['W7', runW7],
  ]) {
    if (!only.has(name)) continue;
    try {
      results.push(...(await run(ctx)));
    } catch (e) {
      errors.push(`${name}: ${errorText(e)}`);
      console.log(`  ${name} FAILED: ${errorText(e).split('\n').join('\n    ')}`);
    }
  }
} finally {
  await ctx.daemon.stop();
}

console.log(
  `\nwrites: W6 ${ctx.mib} MiB, ${ctx.rounds} rounds per writer; W7 ${ctx.files.toLocaleString('en')} files, ` +
    `${ctx.releases} releases (medians; ratio = mimic / rsync, lower is better)\n`,
);
printResults(results);
errors.push(...failures(results));
endRun({ errors, work, keep: opts.keep, started, waitedMs });
if (errors.length > 0) {
  console.log('\nFAILED: a side did not finish (see above); its cells read "error".');
  process.exitCode = 1;
}
