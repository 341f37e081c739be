// The commands both workloads run: a writer timed to the moment it exits, rsync with its byte
// count, the primary's wire-byte counter from /metrics, and SHA-1 of a file.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { freePort, now, runChecked, sleep } from '../lib.mjs';
import { MimicPair } from '../replication/sides.mjs';

/**
 * Runs `argv` and resolves with { exitAt, ms } once it has exited: `exitAt` on the bench's
 * monotonic clock (`now()`), taken in the exit handler, so a workload's clock can start there.
 * Rejects when the command fails.
 */
export function runToExit(argv, { timeoutMs = 600_000 } = {}) {
  return new Promise((done, fail) => {
    const t0 = now();
    const err = [];
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      const exitAt = now();
      clearTimeout(timer);
      if (code === 0) return done({ exitAt, ms: exitAt - t0 });
      const why = signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : `exit ${code ?? signal}`;
      fail(new Error(`${why}: ${argv.join(' ')}\n${Buffer.concat(err).toString().trimEnd()}`));
    });
  });
}

/**
 * `rsync <flags> --stats <src>/ <dest>`, timed from spawn to exit: { ms, sent }, `sent` being
 * rsync's "Total bytes sent" (what the sending side put on the wire or, locally, the pipe).
 */
export async function rsyncStats(flags, src, dest, { timeoutMs = 600_000 } = {}) {
  const r = await runChecked(['rsync', ...flags, '--stats', `${src}/`, dest], { timeoutMs, rss: false });
  const m = /Total bytes sent:\s*([\d,.]+)/.exec(r.stdout);
  return { ms: r.ms, sent: m ? Number(m[1].replace(/,/g, '')) : null };
}

/**
 * GET `url` on a connection of its own: a kept-alive one can be closed by the server just as the
 * next request goes out on it, and that request then fails.
 */
function getText(url) {
  return new Promise((done, fail) => {
    const req = http.get(url, { agent: false, timeout: 10_000 }, (res) => {
      const parts = [];
      res.on('data', (b) => parts.push(b));
      res.on('end', () =>
        res.statusCode === 200
          ? done(Buffer.concat(parts).toString())
          : fail(new Error(`${url}: ${res.statusCode}`)),
      );
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer in 10 s`)));
    req.on('error', (e) => fail(new Error(`${url}: ${e.message}`)));
  });
}

/** The sum over a metric's label sets in a Prometheus text answer (null when absent). */
function metricSum(text, name) {
  let sum = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

/**
 * The primary's /metrics on `port`: `sent` (mimic_mirror_sent_bytes_total, wire bytes to all
 * mirrors since it started), `ops` (ops sent to them) and `lagOps` (journal rows not yet
 * acknowledged by a mirror).
 */
export async function primaryMetrics(port) {
  const text = await getText(`http://127.0.0.1:${port}/metrics`);
  return {
    sent: metricSum(text, 'mimic_mirror_sent_bytes_total'),
    ops: metricSum(text, 'mimic_mirror_sent_ops_total'),
    lagOps: metricSum(text, 'mimic_mirror_lag_ops'),
  };
}

/**
 * Resolves with the primary's metrics (see primaryMetrics) once every mirror has acknowledged
 * everything (no lag in ops) and the byte count has stopped moving; throws after `timeoutMs`.
 */
export async function whenAcked(port, { timeoutMs = 60_000, check } = {}) {
  const end = now() + timeoutMs;
  let last = null;
  for (;;) {
    check?.();
    const m = await primaryMetrics(port);
    if (m.lagOps === 0 && m.sent !== null && m.sent === last) return m;
    last = m.lagOps === 0 ? m.sent : null;
    if (now() > end) throw new Error(`mirror not acknowledged after ${timeoutMs} ms (lag ${m.lagOps} ops)`);
    await sleep(100);
  }
}

const hashBuf = Buffer.allocUnsafe(4 << 20);

/** SHA-1 of a file's bytes, hex (a check of the mirror's copy, not a security measure). */
export function fileHash(path) {
  const h = createHash('sha1');
  const fd = openSync(path, 'r');
  try {
    for (let pos = 0; ; ) {
      const n = readSync(fd, hashBuf, 0, hashBuf.length, pos);
      if (n === 0) break;
      h.update(hashBuf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * The workload's pair under `dir` (primary on `src`, mirror in `dir/mirror`), its primary
 * serving /metrics on a free loopback port; resolves with { pair, httpPort }, not started.
 */
export async function metricsPair(name, dir, src, logDir) {
  const httpPort = await freePort();
  const pair = new MimicPair({
    name,
    src,
    dst: join(dir, 'mirror'),
    primaryState: join(dir, 'primary-state'),
    logDir,
    primaryArgs: ['--http', `127.0.0.1:${httpPort}`],
  });
  return { pair, httpPort };
}
