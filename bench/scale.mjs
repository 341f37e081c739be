// `npm run bench:scale`: the scale workload. N small files (default 100,000: 395 MB in 1,000
// folders) through a mimic primary and mirror on loopback: the initial sync, an idle spell with
// the periodic rescan at its default, a restart on the unchanged tree and one changed file, with
// each agent's RSS and CPU; `rsync -a` beside each (local and into the rsync daemon).
//   node bench/scale.mjs [--files N] [--idle SECONDS] [--quick] [--keep]
// --quick: 20,000 files and 10 s of idle. Env: BENCH_SETTLE_MS, BENCH_AFTER_CLEAN_UP_MS (see
// bench/README.md).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  compareTrees,
  endRun,
  errorText,
  fmtBytes,
  fmtKiB,
  fmtMs,
  fmtRatio,
  MIMIC_BIN,
  mimicInstalled,
  now,
  printTable,
  ratio,
  removeWork,
  settle,
  settleAfterCleanUp,
  WORK_ROOT,
} from './lib.mjs';
import { MimicPair, RsyncDaemon } from './replication/sides.mjs';
import { initialSync, oneFile, restartPair, stopPair } from './scale/mimic.mjs';
import { watchIdle } from './scale/procs.mjs';
import { rsyncRun } from './scale/rsync.mjs';
import { makeScaleTree, oneFileChange } from './scale/tree.mjs';

const { values: opts } = parseArgs({
  options: {
    files: { type: 'string' },
    idle: { type: 'string' },
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const count = (flag, value, fallback, least) => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < least) {
    console.error(`--${flag} ${value}: expected a whole number, at least ${least}`);
    process.exit(2);
  }
  return n;
};
const FILES = count('files', opts.files, opts.quick ? 20_000 : 100_000, 100);
const IDLE_S = count('idle', opts.idle, opts.quick ? 10 : 60, 1);
// Tree-sized waits: generous, and longer for bigger trees.
const TIMEOUT_MS = Math.max(1_800_000, FILES * 20);
const STALL_MS = Math.max(180_000, FILES);

const started = now();
const work = join(WORK_ROOT, 'scale');
if (existsSync(work)) {
  console.log(`removing leftovers in ${work}`);
  removeWork(work, { manyFiles: true });
}
const waitStart = now();
await settleAfterCleanUp();
const waitedMs = now() - waitStart;
mkdirSync(work, { recursive: true });
const logDir = join(work, 'logs');
const src = join(work, 'src');
const localCopy = join(work, 'rsync-local');
mkdirSync(src, { recursive: true });
mkdirSync(logDir, { recursive: true });

console.log(`mimic scale bench: ${FILES.toLocaleString('en')} files, ${IDLE_S} s idle`);
if (!mimicInstalled()) console.log(`note: ${MIMIC_BIN} not found; the mimic side will fail`);

const rows = [];
const notes = [];
const errors = [];
const m = {};
const r = { local: {}, daemon: {} };

/** Runs one step; a failure is printed and kept, and `null` returned. */
async function step(label, fn) {
  try {
    return await fn();
  } catch (e) {
    errors.push(`${label}: ${errorText(e)}`);
    console.log(`  ${label} FAILED: ${errorText(e).split('\n').join('\n    ')}`);
    return null;
  }
}

console.log(`  writing the tree (${Math.max(1, Math.round(FILES / 100)).toLocaleString('en')} folders)`);
const tWrite = now();
const tree = makeScaleTree(src, FILES);
console.log(`    ${fmtBytes(tree.totalBytes)} in ${fmtMs(now() - tWrite)}`);
await settle();

const daemon = await RsyncDaemon.start(work);
const daemonCopy = daemon.path('copy');
const daemonUrl = `rsync://127.0.0.1:${daemon.port}/bench/copy/`;
const pair = new MimicPair({
  name: 'scale',
  src,
  dst: join(work, 'mirror'),
  primaryState: join(work, 'primary-state'),
  logDir,
});

/** The two rsync runs of a phase (local, then the daemon), each after a settle. */
async function rsyncBoth(phase, check) {
  for (const [side, dest, d] of [
    ['local', localCopy, undefined],
    ['daemon', daemonUrl, daemon],
  ]) {
    await step(`${phase} rsync ${side}`, async () => {
      await settle();
      const res = await rsyncRun(src, dest, { daemon: d, timeoutMs: TIMEOUT_MS });
      check?.(side === 'local' ? localCopy : daemonCopy);
      r[side][phase] = res;
      console.log(`    rsync -a (${side}): ${fmtMs(res.ms)}, CPU ${fmtMs(res.cpu)}`);
    });
  }
}

try {
  console.log('\ninitial sync into an empty folder');
  await rsyncBoth('initial', (copy) => {
    const cmp = compareTrees(src, copy);
    if (!cmp.equal) throw new Error(`copy differs from the source: ${cmp.diffs.join('; ')}`);
  });
  m.initial = await step('initial mimic', async () => {
    const res = await initialSync(pair, tree.layout, { timeoutMs: TIMEOUT_MS, stallMs: STALL_MS });
    console.log(
      `    mimic: ${fmtMs(res.ms)} (primary ready after ${fmtMs(res.readyMs)}); CPU primary ` +
        `${fmtMs(res.cpu.primary)}, mirror ${fmtMs(res.cpu.mirror)}; peak RSS primary ` +
        `${fmtKiB(res.mem.primary.hwm)}, mirror ${fmtKiB(res.mem.mirror.hwm)}`,
    );
    return res;
  });

  if (m.initial) {
    console.log(`\nidle: ${IDLE_S} s with nothing happening (rescan every 60 s, the default)`);
    m.idle = await step('idle', async () => {
      const res = await watchIdle(pair, IDLE_S * 1000);
      for (const role of ['primary', 'mirror'])
        console.log(
          `    ${role}: CPU ${fmtMs(res[role].cpu)}, busiest second ${fmtMs(res[role].burst)}; ` +
            `RSS ${fmtKiB(res[role].rss)} (highest ${fmtKiB(res[role].rssMax)})`,
        );
      return res;
    });
  }

  console.log('\nrestart on the unchanged tree');
  if (m.initial) {
    m.stop = await stopPair(pair);
    console.log(`    both stopped (SIGTERM) in ${fmtMs(m.stop.ms)}`);
    for (const n of m.stop.notes) notes.push(`stop before the restart: ${n}`);
  }
  await rsyncBoth('noop');
  if (m.initial) {
    m.restart = await step('restart mimic', async () => {
      const res = await restartPair(pair, { timeoutMs: TIMEOUT_MS });
      console.log(
        `    mimic: in step after ${fmtMs(res.ms)}${res.byPoll ? ' (by status poll)' : ''}: primary ` +
          `ready ${fmtMs(res.readyMs)}, mirror connected ${fmtMs(res.connectedMs)}; CPU primary ` +
          `${fmtMs(res.cpu.primary)}, mirror ${fmtMs(res.cpu.mirror)}`,
      );
      return res;
    });
  }

  console.log('\none file changed (written in place)');
  let change = null;
  const changeOnce = () => {
    change ??= oneFileChange(src, tree.layout, tree.sizes);
    return change;
  };
  if (m.restart) {
    m.one = await step('one file mimic', async () => {
      const res = await oneFile(pair, changeOnce, { timeoutMs: 600_000 });
      console.log(`    mimic: ${fmtMs(res.ms)} (${res.change.rel}, ${res.change.content.length} bytes)`);
      return res;
    });
  }
  if (pair.primary) {
    for (const n of (await stopPair(pair)).notes) notes.push(`final stop: ${n}`);
  }
  if (!change) changeOnce();
  await rsyncBoth('one', (copy) => {
    if (!readFileSync(join(copy, change.rel)).equals(change.content))
      throw new Error(`${change.rel} in the copy does not have the new bytes`);
  });
} finally {
  await pair.stop().catch(() => {});
  await daemon.stop();
}

// The table.
const perFile = (kib) => (typeof kib === 'number' ? `${((kib * 1024) / FILES / 1000).toFixed(2)} kB` : '—');
const cell = (v, fmt) => (typeof v === 'number' ? fmt(v) : '—');
const row = (phase, metric, mimic, { kib, local, daemon: inDaemon, fmt = fmtMs } = {}) => [
  phase,
  metric,
  cell(mimic, fmt),
  kib === undefined ? '' : perFile(kib),
  cell(local, fmt),
  fmtRatio(ratio(mimic, local)),
  cell(inDaemon, fmt),
  fmtRatio(ratio(mimic, inDaemon)),
];
const sum = (x) => (x ? x.primary + x.mirror : null);
const I = m.initial;
const R = m.restart;
const D = m.idle;
rows.push(
  row('initial', 'time to mirrored', I?.ms, { local: r.local.initial?.ms, daemon: r.daemon.initial?.ms }),
  row('initial', 'primary ready (initial scan)', I?.readyMs),
  row('initial', 'mirrored and primary ready', I ? Math.max(I.ms, I.readyMs) : null, {
    local: r.local.initial?.ms,
    daemon: r.daemon.initial?.ms,
  }),
  row('initial', 'CPU, both agents / all rsync', sum(I?.cpu), {
    local: r.local.initial?.cpu,
    daemon: r.daemon.initial?.cpu,
  }),
  row('initial', 'CPU, primary', I?.cpu.primary),
  row('initial', 'CPU, mirror', I?.cpu.mirror),
  row('initial', 'peak RSS (VmHWM), primary', I?.mem.primary.hwm, { kib: I?.mem.primary.hwm, fmt: fmtKiB }),
  row('initial', 'peak RSS (VmHWM), mirror', I?.mem.mirror.hwm, { kib: I?.mem.mirror.hwm, fmt: fmtKiB }),
  row('initial', 'RSS once in step, primary', I?.mem.primary.rss, { kib: I?.mem.primary.rss, fmt: fmtKiB }),
  row('initial', 'RSS once in step, mirror', I?.mem.mirror.rss, { kib: I?.mem.mirror.rss, fmt: fmtKiB }),
  row(`idle ${IDLE_S} s`, 'CPU, primary', D?.primary.cpu),
  row(`idle ${IDLE_S} s`, 'CPU, mirror', D?.mirror.cpu),
  row(`idle ${IDLE_S} s`, 'CPU in the busiest second, primary', D?.primary.burst),
  row(`idle ${IDLE_S} s`, 'CPU in the busiest second, mirror', D?.mirror.burst),
  row(`idle ${IDLE_S} s`, 'steady RSS (at the end), primary', D?.primary.rss, {
    kib: D?.primary.rss,
    fmt: fmtKiB,
  }),
  row(`idle ${IDLE_S} s`, 'steady RSS (at the end), mirror', D?.mirror.rss, {
    kib: D?.mirror.rss,
    fmt: fmtKiB,
  }),
  row('restart', 'stop on SIGTERM, both agents', m.stop?.ms),
  row('restart', 'ready and in step / rsync no-op', R?.ms, {
    local: r.local.noop?.ms,
    daemon: r.daemon.noop?.ms,
  }),
  row('restart', 'primary logs ready', R?.readyMs),
  row('restart', 'mirror logs connected', R?.connectedMs),
  row('restart', 'CPU, both agents / all rsync', sum(R?.cpu), {
    local: r.local.noop?.cpu,
    daemon: r.daemon.noop?.cpu,
  }),
  row('restart', 'CPU, primary', R?.cpu.primary),
  row('restart', 'CPU, mirror', R?.cpu.mirror),
  row('restart', 'peak RSS (VmHWM), primary', R?.mem.primary.hwm, { kib: R?.mem.primary.hwm, fmt: fmtKiB }),
  row('restart', 'peak RSS (VmHWM), mirror', R?.mem.mirror.hwm, { kib: R?.mem.mirror.hwm, fmt: fmtKiB }),
  row('one file', 'time to mirrored / rsync -a of the tree', m.one?.ms, {
    local: r.local.one?.ms,
    daemon: r.daemon.one?.ms,
  }),
  row('one file', 'CPU of the rsync run', null, { local: r.local.one?.cpu, daemon: r.daemon.one?.cpu }),
);

console.log(
  `\nscale: ${FILES.toLocaleString('en')} files, ${fmtBytes(tree.totalBytes)}, ` +
    `${tree.layout.dirs.length.toLocaleString('en')} folders (one run; ratio = mimic / rsync, lower is better)\n`,
);
printTable(
  ['phase', 'metric', 'mimic', 'per file', 'rsync -a, local', 'ratio', 'rsync -a, daemon', 'ratio'],
  rows,
);
if (R?.byPoll) notes.push('restart: the seq moved after the restart, so in step is the first status read');
if (notes.length > 0) {
  console.log('\nnotes:');
  for (const n of notes) console.log(`  ${n}`);
}
endRun({ errors, work, keep: opts.keep, started, waitedMs });
if (errors.length > 0) process.exitCode = 1;
