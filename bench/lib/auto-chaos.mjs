// The automatic mode of `npm run bench:chaos -- --auto`: failover on a real etcd (loopback),
// without anyone running promote. Each cycle: a primary and two mirrors in one etcd cluster
// (lease TTL 2 s); a writer adds files on the primary; at a random moment the primary is
// either killed with SIGKILL or cut off from etcd (not from the mirrors) through a proxy. A
// write is confirmed once a mirror holds it. Checked per cycle: a mirror took over by itself,
// it holds every confirmed write, the other mirror follows it, and (when the primary was cut
// off, so still running) the old primary stopped ('fenced') before the new one took the leader
// key, on the one clock of this machine: a split-brain window otherwise.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { freePorts, MIMIC_BIN, ProcessSet, rngOf, sleep, waitFor } from '../../test/helpers/chaos-procs.mjs';
import { startEtcd } from '../../test/helpers/etcd.mjs';

const TTL = '2';

/** A TCP proxy to `port` that can refuse and reset everything (the primary's path to etcd). */
async function proxyTo(port) {
  const sockets = new Set();
  let open = true;
  const server = createServer((client) => {
    if (!open) return client.destroy();
    const up = connect(port, '127.0.0.1');
    sockets.add(client).add(up);
    client.pipe(up).pipe(client);
    const drop = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

const eventTime = (proc, event) => {
  const e = proc.events(event)[0];
  return e ? Date.parse(e.time) : null;
};

async function cycle(baseDir, seed, endpoint, name) {
  const rng = rngOf(seed);
  const dirs = Object.fromEntries(['P', 'A', 'B'].map((n) => [n, join(baseDir, n)]));
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const procs = new ProcessSet();
  const proxy = await proxyTo(Number(new URL(endpoint).port));
  const partition = rng.chance(0.5);
  try {
    const ports = await freePorts(3);
    const urls = ports.map((p) => `ws://127.0.0.1:${p}`);
    const etcd = (url) => ['--etcd', url, '--cluster', name, '--etcd-ttl', TTL];
    const P = procs.start('P', [
      MIMIC_BIN,
      'primary',
      dirs.P,
      '--listen',
      `127.0.0.1:${ports[0]}`,
      '--init',
      '--peers',
      urls.slice(1).join(','),
      ...etcd(proxy.url),
    ]);
    await waitFor(
      () => P.events('ready').length > 0,
      20_000,
      'P ready',
      () => P.tail(),
    );
    const mirror = (label, i) =>
      procs.start(label, [
        MIMIC_BIN,
        'mirror',
        dirs[label],
        '--primary',
        urls.join(','),
        '--listen',
        `127.0.0.1:${ports[i]}`,
        ...etcd(endpoint),
      ]);
    const A = mirror('A', 1);
    const B = mirror('B', 2);
    for (const m of [A, B])
      await waitFor(
        () => m.events('connected').length > 0,
        20_000,
        `${m.label} connected`,
        () => m.tail(),
      );
    // Writes, and which of them a mirror confirmed holding.
    const written = [];
    const confirmed = new Set();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const f = `w${i}.txt`;
        writeFileSync(join(dirs.P, f), `write ${i}\n`);
        written.push(f);
        await sleep(rng.int(5, 30));
      }
    })();
    const confirm = () => {
      for (const f of written)
        for (const m of ['A', 'B'])
          if (
            !confirmed.has(f) &&
            existsSync(join(dirs[m], f)) &&
            readFileSync(join(dirs[m], f), 'utf8') === `write ${f.slice(1, -4)}\n`
          )
            confirmed.add(f);
    };
    const checker = setInterval(confirm, 50);
    await sleep(rng.int(500, 3000));
    confirm();
    clearInterval(checker);
    const sure = new Set(confirmed);
    const t0 = Date.now();
    if (partition) proxy.cut();
    else await P.kill9();
    writing = false;
    await writer;
    const winner = await waitFor(
      () => (A.events('promoted').length > 0 ? A : B.events('promoted').length > 0 ? B : null),
      30_000,
      'a mirror to take over',
      () => procs.describe(),
    );
    const failoverMs = Date.now() - t0;
    const other = winner === A ? B : A;
    const missing = [...sure].filter((f) => !existsSync(join(dirs[winner.label], f)));
    // The other mirror follows the new primary: a file written there reaches it.
    writeFileSync(join(dirs[winner.label], 'after.txt'), 'new primary\n');
    await waitFor(
      () => existsSync(join(dirs[other.label], 'after.txt')),
      20_000,
      `${other.label} to follow`,
      () => procs.describe(),
    );
    let splitBrain = false;
    let gapMs = null;
    if (partition) {
      await waitFor(
        () => P.events('fenced').length > 0,
        10_000,
        'P fenced',
        () => P.tail(),
      );
      const fencedAt = eventTime(P, 'fenced');
      const leaderAt = eventTime(winner, 'leader');
      gapMs = leaderAt - fencedAt;
      splitBrain = !(fencedAt < leaderAt);
    }
    const bothPromoted = A.events('promoted').length > 0 && B.events('promoted').length > 0;
    return {
      partition,
      confirmed: sure.size,
      written: written.length,
      missing,
      splitBrain,
      gapMs,
      failoverMs,
      winner: winner.label,
      bothPromoted,
    };
  } finally {
    await procs.stopAll();
    await proxy.close();
  }
}

export async function runAutoChaos({ cycles, firstSeed, work, keep }) {
  console.log(`chaos --auto: ${cycles} cycles on a real etcd, seeds ${firstSeed + 1}…${firstSeed + cycles}`);
  const etcd = await startEtcd({ baseDir: join(work, 'etcd') });
  const results = [];
  let failed = 0;
  try {
    for (let i = 1; i <= cycles; i++) {
      const baseDir = join(work, `auto-${i}`);
      let r;
      try {
        r = await cycle(baseDir, firstSeed + i, etcd.endpoints[0], `chaos${i}`);
      } catch (err) {
        failed++;
        console.log(`cycle ${i}: did not finish: ${err.message.split('\n')[0]}`);
        continue;
      }
      results.push(r);
      const bad = r.missing.length > 0 || r.splitBrain || r.bothPromoted;
      if (bad) failed++;
      console.log(
        `cycle ${i} | ${r.partition ? 'cut from etcd' : 'kill -9'} | ${r.confirmed} confirmed of ${r.written} | lost ${r.missing.length}` +
          ` | ${r.winner} took over in ${r.failoverMs} ms${r.gapMs === null ? '' : ` | fenced ${r.gapMs} ms before the new leader`}` +
          `${r.splitBrain ? ' | SPLIT BRAIN' : ''}${r.bothPromoted ? ' | TWO PROMOTED' : ''} | ${bad ? 'FAIL' : 'ok'}`,
      );
      if (!bad && !keep) rmSync(baseDir, { recursive: true, force: true });
    }
  } finally {
    await etcd.stop();
  }
  const sorted = (xs) => [...xs].sort((a, b) => a - b);
  const fo = sorted(results.map((r) => r.failoverMs));
  const gaps = sorted(results.filter((r) => r.gapMs !== null).map((r) => r.gapMs));
  const at = (s, q) => (s.length === 0 ? '—' : s[Math.min(s.length - 1, Math.floor(q * s.length))]);
  console.log(`\ncycles ${cycles} (${results.length} finished, ${failed} failed)`);
  console.log(
    `  confirmed writes lost            ${results.reduce((n, r) => n + r.missing.length, 0)} of ${results.reduce((n, r) => n + r.confirmed, 0)}`,
  );
  console.log(
    `  split-brain windows              ${results.filter((r) => r.splitBrain).length} (in ${gaps.length} cut-off cycles)`,
  );
  console.log(`  two mirrors promoted             ${results.filter((r) => r.bothPromoted).length}`);
  console.log(
    `  failover (kill/cut to promoted)  p50 ${at(fo, 0.5)} ms, max ${fo[fo.length - 1] ?? '—'} ms (lease TTL ${TTL} s)`,
  );
  console.log(`  old primary fenced before leader p50 ${at(gaps, 0.5)} ms, min ${gaps[0] ?? '—'} ms`);
  return failed === 0;
}
