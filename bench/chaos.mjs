// `npm run bench:chaos`: the kill -9 loop of test/chaos.test.ts, for many cycles.
//   node bench/chaos.mjs [--cycles N] [--seed S] [--keep]
//   node bench/chaos.mjs --sqlite [--cycles N]: live SQLite databases through the crash instead
//   (bench/lib/sqlite-chaos.mjs)
//   node bench/chaos.mjs --auto [--cycles N]: automatic failover on a real etcd, no promote run
//   by hand: kill -9 or a cut from etcd (bench/lib/auto-chaos.mjs)
// Each cycle: a library primary and two `mimic mirror` processes on fresh folders, batches of
// changes confirmed by flush, SIGKILL for the primary at a random moment (sometimes for a mirror
// before that), promotion of one mirror, the other following it, the old primary rejoining as a
// mirror. Prints one line per cycle and a summary; exits 1 if any confirmed write was lost, any
// file was torn, anything the old primary alone held was not kept, or a cycle did not finish.
// --seed S replays cycles S+1, S+2, … (the writer's choices and the kill times follow from the
// seed; the timing of the processes does not). --keep leaves the folders of failing cycles, with
// each process's log (its stderr) beside them.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeCycle, ProcessSet, runChaosCycle } from '../test/helpers/chaos-cycle.mjs';
import { runAutoChaos } from './lib/auto-chaos.mjs';
import { runSqliteChaos } from './lib/sqlite-chaos.mjs';

const { values: opts } = parseArgs({
  options: {
    cycles: { type: 'string' },
    seed: { type: 'string' },
    keep: { type: 'boolean', default: false },
    sqlite: { type: 'boolean', default: false },
    auto: { type: 'boolean', default: false },
  },
});
const cycles = Number(opts.cycles ?? (opts.sqlite ? '20' : opts.auto ? '50' : '25'));
const firstSeed = opts.seed === undefined ? Date.now() % 1_000_000 : Number(opts.seed);
if (!Number.isInteger(cycles) || cycles < 1 || !Number.isFinite(firstSeed)) {
  console.error('usage: node bench/chaos.mjs [--sqlite | --auto] [--cycles N] [--seed S] [--keep]');
  process.exit(2);
}

const work = fileURLToPath(new URL('./.work/chaos', import.meta.url));
if (existsSync(work)) rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

if (opts.auto) {
  const ok = await runAutoChaos({ cycles, firstSeed, work, keep: opts.keep });
  process.exit(ok ? 0 : 1);
}
if (opts.sqlite) {
  const ok = await runSqliteChaos({ cycles, firstSeed, work, keep: opts.keep });
  process.exit(ok ? 0 : 1);
}

function quantiles(values) {
  if (values.length === 0) return '—';
  const s = [...values].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return `p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${s[s.length - 1]} ms`;
}

/** Each process's log (its stderr) as a file in the kept folder: A.log, B-restarted.log, … */
function saveLogs(procs, dir) {
  const taken = new Set();
  for (const p of procs.procs) {
    const base = p.label.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'process';
    let name = `${base}.log`;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}.log`;
    taken.add(name);
    writeFileSync(join(dir, name), p.stderr);
  }
}

function indent(lines, limit = 12) {
  const shown = lines.slice(0, limit).map((l) => `      ${l}`);
  if (lines.length > limit) shown.push(`      … ${lines.length - limit} more`);
  return shown.join('\n');
}

console.log(`chaos: ${cycles} cycles, seeds ${firstSeed + 1}…${firstSeed + cycles}, folders under ${work}`);
const results = [];
const failures = [];
const started = Date.now();
for (let i = 1; i <= cycles; i++) {
  const seed = firstSeed + i;
  const baseDir = join(work, `cycle-${i}`);
  mkdirSync(baseDir, { recursive: true });
  const procs = new ProcessSet();
  let keepDir = false;
  try {
    const r = await runChaosCycle({ baseDir, procs, seed });
    results.push(r);
    console.log(describeCycle(i, r));
    const problems = [
      ['lost after promotion', r.lost],
      ['not on a mirror when its flush resolved', r.notFlushed],
      ['torn or foreign', r.torn],
      ['not kept at rejoin', r.keptLost],
    ].filter(([, list]) => list.length > 0);
    if (problems.length > 0 || r.flushFailures > 0) {
      keepDir = opts.keep;
      for (const [what, list] of problems) console.log(`    ${what} (${list.length}):\n${indent(list, 6)}`);
      for (const [path, story] of Object.entries(r.histories ?? {}))
        console.log(`      history ${path}: ${story}`);
    }
  } catch (err) {
    keepDir = opts.keep;
    failures.push({ i, seed, error: err.message });
    console.log(`cycle ${i} | seed ${seed} | DID NOT FINISH: ${err.message.split('\n')[0]}`);
    console.log(indent(err.message.split('\n').slice(1), 30));
  } finally {
    await procs.stopAll();
    if (keepDir) saveLogs(procs, baseDir);
    else rmSync(baseDir, { recursive: true, force: true });
  }
}

const sum = (f) => results.reduce((n, r) => n + f(r), 0);
const affected = (f) => results.filter((r) => f(r) > 0).length;
const lost = sum((r) => r.lost.length);
const notFlushed = sum((r) => r.notFlushed.length);
const torn = sum((r) => r.torn.length);
const keptLost = sum((r) => r.keptLost.length);
const flushFailures = sum((r) => r.flushFailures);
console.log(`
summary (${((Date.now() - started) / 1000).toFixed(0)} s)
  cycles run                                   ${cycles} (${results.length} finished, ${failures.length} did not)
  mirror also killed before the primary        ${results.filter((r) => r.mirrorKilled).length} cycles
  changes written                              ${sum((r) => r.changes)}
  flushes                                      ${sum((r) => r.flushes)} resolved, ${flushFailures} failed; ${quantiles(results.flatMap((r) => r.flushMs))}
  confirmed writes checked after promotion     ${sum((r) => r.confirmedWrites)} (over ${sum((r) => r.pathsChecked)} path checks)
  lost confirmed writes (must be 0)            ${lost} in ${affected((r) => r.lost.length)} cycles
  confirmed but not on a mirror at flush (0)   ${notFlushed} checks failed in ${affected((r) => r.notFlushed.length)} cycles
  torn or foreign files (must be 0)            ${torn} checks failed in ${affected((r) => r.torn.length)} cycles
  old primary's own data not kept (must be 0)  ${keptLost} in ${affected((r) => r.keptLost.length)} cycles; ${sum((r) => r.keptRequired)} versions kept
  files under diverged/ (old primary)          ${sum((r) => r.diverged.P)}
  promotion                                    ${quantiles(results.map((r) => r.promoteMs))}
  other mirror follows the new primary         ${quantiles(results.map((r) => r.bConvergeMs))}
  old primary rejoined and converged           ${quantiles(results.map((r) => r.pConvergeMs))}
  cycle                                        ${quantiles(results.map((r) => r.totalMs))}`);
for (const f of failures)
  console.log(`  did not finish: cycle ${f.i} (seed ${f.seed}): ${f.error.split('\n')[0]}`);
const bad = lost + notFlushed + torn + keptLost + flushFailures + failures.length;
console.log(bad === 0 ? '\nOK' : '\nFAILED: see the cycles above');
process.exitCode = bad === 0 ? 0 : 1;
