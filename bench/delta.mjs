// `npm run bench:delta`: W5, the W1 file through the delta tools alone, mimic against rdiff.
//   node bench/delta.mjs [--size-mib N] [--keep]
// Env: BENCH_RUNS (default 3), BENCH_SETTLE_MS (pause after each sync, default 3000).
// Steps run interleaved (signature: mimic, rdiff; delta: mimic, rdiff; ...), the order flipping
// every run, each after a settle. Every patched output is compared with the new file by cmp.
// Then the pathological case: zeros and a repeating 1 KiB pattern, where a delta search without
// a bound on work per weak-hash candidate goes quadratic; each command there has 120 s.
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  applyW1Edit,
  comparisonRow,
  errorText,
  fmtBytes,
  fmtKiB,
  fmtMs,
  MiB,
  median,
  mimicArgv,
  printTable,
  removeWork,
  runChecked,
  runsFromEnv,
  settle,
  WORK_ROOT,
  writePathological,
  writeRandomFile,
} from './lib.mjs';

/** Upper bounds on mimic / rdiff. */
const TARGETS = { signature: 1.0, delta: 1.0, patch: 1.5, size: 1.5 };
const STEPS = ['signature', 'delta', 'patch'];

const { values: opts } = parseArgs({
  options: { 'size-mib': { type: 'string', default: '256' }, keep: { type: 'boolean', default: false } },
});
const sizeMiB = Number(opts['size-mib']);
if (!(sizeMiB >= 1)) {
  console.error('--size-mib wants a number of MiB, at least 1');
  process.exit(2);
}

const work = join(WORK_ROOT, 'delta');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const f = (name) => join(work, name);

/** The argv of each step for each tool; `tag` keeps every run's outputs apart. */
const TOOLS = {
  mimic: {
    signature: (basis, tag) => mimicArgv('signature', basis, f(`m-${tag}.sig`)),
    delta: (next, tag) => mimicArgv('delta', f(`m-${tag}.sig`), next, f(`m-${tag}.delta`)),
    patch: (basis, tag) => mimicArgv('patch', basis, f(`m-${tag}.delta`), f(`m-${tag}.out`)),
  },
  rdiff: {
    signature: (basis, tag) => ['rdiff', 'signature', basis, f(`r-${tag}.sig`)],
    delta: (next, tag) => ['rdiff', 'delta', f(`r-${tag}.sig`), next, f(`r-${tag}.delta`)],
    patch: (basis, tag) => ['rdiff', 'patch', basis, f(`r-${tag}.delta`), f(`r-${tag}.out`)],
  },
};
const outOf = (tool, tag) => f(`${tool[0]}-${tag}.out`);
const deltaOf = (tool, tag) => f(`${tool[0]}-${tag}.delta`);
const argvFor = (tool, step, basis, next, tag) => TOOLS[tool][step](step === 'delta' ? next : basis, tag);

/** cmp exit status 0 means identical. */
async function sameBytes(a, b) {
  try {
    await runChecked(['cmp', '-s', a, b], { rss: false });
    return true;
  } catch {
    return false;
  }
}

const size = Math.round(sizeMiB * MiB);
const basis = f('basis.bin');
const next = f('new.bin');
console.log(`W5: ${sizeMiB} MiB random basis, W1 edit (64 × 4 KiB overwrites, +1,000 B, −500 B)`);
writeRandomFile(basis, size, 1);
applyW1Edit(basis, next, size, 1);

// A failed step skips the rest of that tool's run (each step needs the previous one's output);
// the next run tries again. Any failure is reported; a wrong patched output is a failure too.
const failed = {};
const brokenRun = {};
const samples = {};
for (const tool of Object.keys(TOOLS)) {
  samples[tool] = { ms: Object.fromEntries(STEPS.map((s) => [s, []])), rss: {}, size: [] };
  for (const s of STEPS) samples[tool].rss[s] = [];
}

const runs = runsFromEnv(3);
for (let run = 0; run < runs; run++) {
  const order = run % 2 === 0 ? ['mimic', 'rdiff'] : ['rdiff', 'mimic'];
  console.log(`run ${run + 1}/${runs} (${order.join(' first, ')} second)`);
  for (const step of STEPS) {
    for (const tool of order) {
      if (brokenRun[tool] === run) continue;
      await settle();
      try {
        const r = await runChecked(argvFor(tool, step, basis, next, run), { timeoutMs: 600_000 });
        samples[tool].ms[step].push(r.ms);
        samples[tool].rss[step].push(r.rssKiB);
        console.log(`  ${tool} ${step}: ${fmtMs(r.ms)}, peak RSS ${fmtKiB(r.rssKiB)}`);
      } catch (e) {
        brokenRun[tool] = run;
        failed[tool] ??= `run ${run + 1} ${step}: ${errorText(e)}`;
        console.log(`  ${tool} ${step} FAILED: ${errorText(e)}`);
      }
    }
  }
  for (const tool of order) {
    if (brokenRun[tool] === run) continue;
    samples[tool].size.push(statSync(deltaOf(tool, run)).size);
    if (!(await sameBytes(outOf(tool, run), next))) {
      failed[tool] ??= `patched output of run ${run + 1} differs from the new file`;
      console.log(`  ${tool}: patched output of run ${run + 1} differs from the new file`);
    }
  }
}

// mimic's librsync-format delta must be something rdiff can apply (untimed).
let interop = 'not run';
const signed = Array.from({ length: runs }, (_, r) => f(`m-${r}.sig`)).find((p) => existsSync(p));
if (signed) {
  try {
    await runChecked(mimicArgv('delta', signed, next, f('interop.delta'), '--format', 'librsync'));
    await runChecked(['rdiff', 'patch', basis, f('interop.delta'), f('interop.out')]);
    interop = (await sameBytes(f('interop.out'), next)) ? 'ok' : 'output differs';
  } catch (e) {
    interop = `failed: ${errorText(e).split('\n')[0]}`;
  }
}

// The pathological pair: each tool signs the basis, then is timed on the delta, 120 s each.
console.log(
  '\npathological: 64 MiB = 32 MiB zeros + repeated 1 KiB pattern, 10 small edits + 100-byte insertion',
);
writePathological(f('patho-basis.bin'), f('patho-new.bin'));
const patho = {};
for (const tool of Object.keys(TOOLS)) {
  const tag = 'patho';
  const pb = f('patho-basis.bin');
  const pn = f('patho-new.bin');
  try {
    await runChecked(argvFor(tool, 'signature', pb, pn, tag), { timeoutMs: 120_000 });
    await settle();
    const r = await runChecked(argvFor(tool, 'delta', pb, pn, tag), { timeoutMs: 120_000 });
    await runChecked(argvFor(tool, 'patch', pb, pn, tag), { timeoutMs: 120_000 });
    const ok = await sameBytes(outOf(tool, tag), pn);
    patho[tool] = { ms: r.ms, rss: r.rssKiB, size: statSync(deltaOf(tool, tag)).size, ok };
    console.log(
      `  ${tool} delta: ${fmtMs(r.ms)}, ${fmtBytes(patho[tool].size)}, patch ${ok ? 'exact' : 'DIFFERS'}`,
    );
  } catch (e) {
    patho[tool] = { error: errorText(e).split('\n')[0] };
    console.log(`  ${tool} FAILED: ${errorText(e)}`);
  }
}

const med = (tool, key, step) => {
  if (samples[tool].size.length === 0) return 'error';
  return median(step ? samples[tool][key][step] : samples[tool][key]);
};
console.log(`\nW5 medians of ${runs} runs, ${sizeMiB} MiB (ratio = mimic / rdiff, lower is better)\n`);
const rows = STEPS.map((s) =>
  comparisonRow([s], med('mimic', 'ms', s), med('rdiff', 'ms', s), TARGETS[s], fmtMs),
);
rows.push(comparisonRow(['delta size'], med('mimic', 'size'), med('rdiff', 'size'), TARGETS.size, fmtBytes));
const pathoCell = (p) => (p.error ? 'error' : p.ms);
rows.push(comparisonRow(['pathological delta'], pathoCell(patho.mimic), pathoCell(patho.rdiff), null, fmtMs));
printTable(['step', 'mimic', 'rdiff', 'ratio', 'target', ''], rows);

console.log('\npeak RSS (max over runs)\n');
const maxRss = (tool, s) => {
  const v = samples[tool].rss[s].filter((x) => x !== null);
  return v.length ? fmtKiB(Math.max(...v)) : '—';
};
printTable(
  ['step', 'mimic', 'rdiff'],
  [
    ...STEPS.map((s) => [s, maxRss('mimic', s), maxRss('rdiff', s)]),
    ['pathological delta', fmtKiB(patho.mimic.rss), fmtKiB(patho.rdiff.rss)],
  ],
);

console.log('\nchecks');
for (const tool of Object.keys(TOOLS)) {
  console.log(
    `  ${tool}: ${failed[tool] ? `FAILED (${failed[tool].split('\n')[0]})` : 'every patched output equals the new file'}`,
  );
}
console.log(`  mimic --format librsync delta applied by rdiff patch: ${interop}`);
for (const tool of Object.keys(TOOLS)) {
  const p = patho[tool];
  const state = p.error
    ? `FAILED (${p.error})`
    : p.ok
      ? `delta ${fmtBytes(p.size)}, patch exact`
      : 'patch DIFFERS';
  console.log(`  pathological ${tool}: ${state}`);
}

if (opts.keep) console.log(`\nkept ${work}`);
else removeWork(work);
