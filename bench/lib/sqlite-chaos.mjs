// The SQLite mode of `npm run bench:chaos -- --sqlite`: an application commits small
// transactions to a WAL database and a rollback-journal database in the primary's folder; at a
// random moment the application and the primary are killed with SIGKILL together (the host
// dies); the mirror is promoted and each database on it is checked: it opens, passes
// integrity_check and is the state after one committed transaction (see
// test/helpers/sqlite-app.mjs). Prints one line per cycle, then databases intact / total and
// the committed transactions lost per cycle (median and worst), per journal mode.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePorts,
  MIMIC_BIN,
  ProcessSet,
  rngOf,
  runMimic,
  sleep,
  waitFor,
} from '../../test/helpers/chaos-procs.mjs';
import { checkDatabase, DATABASES } from '../../test/helpers/sqlite-app.mjs';

const APP = fileURLToPath(new URL('../../test/helpers/sqlite-app.mjs', import.meta.url));

/** Waits for a `mimic` agent's JSON event on stderr. */
const eventOf = (proc, event, ms) =>
  waitFor(
    () => proc.events(event).length > 0,
    ms,
    `${proc.label}: ${event}`,
    () => proc.tail(),
  );

async function cycle(baseDir, seed) {
  const rng = rngOf(seed);
  const P = join(baseDir, 'primary');
  const M = join(baseDir, 'mirror');
  mkdirSync(P, { recursive: true });
  mkdirSync(M, { recursive: true });
  const procs = new ProcessSet();
  try {
    const [pPort, mPort] = await freePorts(2);
    const primary = procs.start('primary', [
      MIMIC_BIN,
      'primary',
      P,
      '--listen',
      `127.0.0.1:${pPort}`,
      '--init',
    ]);
    await eventOf(primary, 'ready', 20_000);
    const mirror = procs.start('mirror', [
      MIMIC_BIN,
      'mirror',
      M,
      '--primary',
      `ws://127.0.0.1:${pPort}`,
      '--listen',
      `127.0.0.1:${mPort}`,
    ]);
    await eventOf(mirror, 'connected', 20_000);
    const app = procs.start('app', [APP, P, '2']);
    const committed = new Map();
    app.child.stdout.removeAllListeners('data');
    let rest = '';
    app.child.stdout.on('data', (d) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop();
      for (const line of lines) {
        const [name, n] = line.split(' ');
        committed.set(name, Number(n));
      }
    });
    await sleep(rng.int(800, 4000));
    const drained = new Promise((r) => app.child.stdout.once('close', r));
    app.child.kill('SIGKILL');
    await primary.kill9();
    await app.exited;
    // Every commit it reported: what was still in the pipe when it died is read to the end.
    await drained;
    const promoted = await runMimic(['promote', '--state', join(M, '.mimic')], 30_000);
    if (promoted.code !== 0) throw new Error(`promote: ${promoted.stderr.trim()}`);
    const dbs = DATABASES.map(({ name, mode }) => {
      const found = checkDatabase(join(M, name));
      const c = committed.get(name) ?? 0;
      // The kill can fall between a commit and its report: one transaction more is not "ahead".
      const ahead = found.ok && found.n > c + 1;
      return {
        name,
        mode,
        committed: c,
        ...found,
        ok: found.ok && !ahead,
        problem: ahead ? `ahead of the app: ${found.n} > ${c}` : found.problem,
        lost: found.ok ? Math.max(0, c - found.n) : null,
      };
    });
    return dbs;
  } finally {
    await procs.stopAll();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? '—' : s[Math.floor(s.length / 2)];
};

export async function runSqliteChaos({ cycles, firstSeed, work, keep }) {
  console.log(`chaos --sqlite: ${cycles} cycles, seeds ${firstSeed + 1}…${firstSeed + cycles}`);
  const all = [];
  let failed = 0;
  for (let i = 1; i <= cycles; i++) {
    const baseDir = join(work, `sqlite-${i}`);
    let dbs;
    try {
      dbs = await cycle(baseDir, firstSeed + i);
    } catch (err) {
      failed++;
      console.log(`cycle ${i}: did not finish: ${err.message.split('\n')[0]}`);
      continue;
    }
    all.push(...dbs);
    const bad = dbs.filter((d) => !d.ok);
    console.log(
      `cycle ${i}: ${dbs
        .map((d) =>
          d.ok
            ? `${d.name} ok at txn ${d.n} of ${d.committed} (lost ${d.lost})`
            : `${d.name} BAD: ${d.problem}`,
        )
        .join('; ')}`,
    );
    if (bad.length > 0) failed++;
    else if (!keep) rmSync(baseDir, { recursive: true, force: true });
  }
  const intact = all.filter((d) => d.ok);
  console.log(`\ndatabases intact: ${intact.length} / ${all.length} (${cycles} cycles, ${failed} failed)`);
  for (const { mode } of DATABASES) {
    const lost = intact.filter((d) => d.mode === mode).map((d) => d.lost);
    const worst = lost.length === 0 ? '—' : Math.max(...lost);
    console.log(`  ${mode.padEnd(6)} transactions lost per cycle: median ${median(lost)}, worst ${worst}`);
  }
  return failed === 0 && intact.length === all.length;
}
