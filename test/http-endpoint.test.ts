import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { type Agent, runMimic, test, waitFor } from './helpers/cluster.js';

/*
 * A node's --http endpoint as Prometheus, a load balancer and an operator's curl use it, against
 * real agents: /metrics scraped with a real HTTP client and parsed, /livez, /readyz following
 * the readiness rules, the token asked for everything but the health checks, and bad flags
 * refused in one line.
 */

/** `name{labels} value` lines of a Prometheus text exposition, comments skipped. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a metric line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function httpUrl(agent: Agent): Promise<string> {
  return String((await agent.waitForEvent('http', 20_000)).url);
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parseMetrics(await res.text());
}

const HTTP = ['--http', '127.0.0.1:0'];

describe.concurrent('the HTTP endpoint', () => {
  test('metrics of a primary and its mirror, lag while the mirror is stopped', async ({ cluster: c }) => {
    const pair = await c.pair({ args: [...HTTP, '--ready-mirrors', '1', '--ready-lag', '1'] });
    const mirror = await c.mirror(await c.tempDir('second'), pair.primary.url, { args: HTTP });
    const pUrl = await httpUrl(pair.primary);
    const mUrl = await httpUrl(mirror);
    for (let i = 0; i < 20; i++)
      await writeFile(join(pair.primaryDir, `f${i}`), `content ${i}\n`.repeat(100));
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const st = await pair.primary.status<{ seq: number; mirrors: { id: string }[] }>();
    const mirrorId = (await mirror.status<{ nodeId: string }>()).nodeId;
    await waitFor(
      async () => (await scrape(pUrl)).get(`mimic_mirror_acked_seq{mirror="${mirrorId}"}`) === st.seq,
      10_000,
      'the second mirror acknowledged everything',
    );
    const p = await scrape(pUrl);
    expect(p.get('mimic_role{role="primary"}')).toBe(1);
    expect(p.get('mimic_seq')).toBe(st.seq);
    expect(p.get('mimic_manifest_paths')).toBe(20);
    expect(p.get('mimic_journal_rows')).toBeGreaterThanOrEqual(20);
    expect(p.get(`mimic_mirror_connected{mirror="${mirrorId}"}`)).toBe(1);
    expect(p.get(`mimic_mirror_lag_ops{mirror="${mirrorId}"}`)).toBe(0);
    expect(p.get(`mimic_mirror_sent_ops_total{mirror="${mirrorId}"}`)).toBeGreaterThanOrEqual(20);
    expect(p.get(`mimic_mirror_sent_bytes_total{mirror="${mirrorId}"}`)).toBeGreaterThan(20 * 1000);
    expect(p.get('mimic_watcher_events_total')).toBeGreaterThan(0);
    expect(p.has('process_resident_memory_bytes')).toBe(true);
    expect(p.has('mimic_lag_ops')).toBe(false); // a mirror's metric, not a primary's
    const m = await scrape(mUrl);
    expect(m.get('mimic_role{role="mirror"}')).toBe(1);
    expect(m.get('mimic_seq')).toBe(st.seq);
    expect(m.get('mimic_primary_connected')).toBe(1);
    expect(m.get('mimic_received_ops_total')).toBeGreaterThanOrEqual(20);
    expect(
      m.get('mimic_fsyncs_total{kind="fsync"}')! + m.get('mimic_fsyncs_total{kind="syncfs"}')!,
    ).toBeGreaterThan(0);
    expect((await fetch(`${pUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${mUrl}/readyz`)).status).toBe(200);

    // Stopped, the mirror acknowledges nothing: its lag grows in ops, bytes and seconds, and
    // the primary (asked for one mirror within 1 s) is not ready while the other is stopped too.
    mirror.pause();
    pair.mirror.pause();
    for (let i = 0; i < 10; i++) await writeFile(join(pair.primaryDir, `g${i}`), 'x'.repeat(5000));
    await waitFor(
      async () => {
        const now = await scrape(pUrl);
        return (
          now.get(`mimic_mirror_lag_ops{mirror="${mirrorId}"}`)! >= 10 &&
          now.get(`mimic_mirror_lag_bytes{mirror="${mirrorId}"}`)! >= 50_000 &&
          now.get(`mimic_mirror_lag_seconds{mirror="${mirrorId}"}`)! > 1
        );
      },
      { timeoutMs: 15_000, what: 'the stopped mirror lagging in ops, bytes and seconds' },
    );
    const notReady = await fetch(`${pUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain('0 of 2 mirrors in step (1 required)');
    expect((await fetch(`${pUrl}/livez`)).status).toBe(200);
    mirror.resume();
    pair.mirror.resume();
    await waitFor(
      async () => (await scrape(pUrl)).get(`mimic_mirror_lag_ops{mirror="${mirrorId}"}`) === 0,
      15_000,
      'the mirror caught up',
    );
    await waitFor(async () => (await fetch(`${pUrl}/readyz`)).status === 200, 10_000, 'ready again');

    // Its primary gone, a mirror is not ready; it still lives.
    await pair.primary.kill9();
    await waitFor(async () => (await fetch(`${mUrl}/readyz`)).status === 503, 10_000, 'not ready');
    expect(await (await fetch(`${mUrl}/readyz`)).text()).toContain('not connected');
    expect((await fetch(`${mUrl}/livez`)).status).toBe(200);
    const after = await scrape(mUrl);
    expect(after.get('mimic_primary_connected')).toBe(0);
  });

  test('with a token, all but the health checks ask for it', async ({ cluster: c }) => {
    const dir = await c.tempDir('token');
    const tokenFile = join(dir, 'token');
    const secret = 'a-secret-of-thirty-two-bytes-or-more!!';
    await writeFile(tokenFile, `${secret}\n`, { mode: 0o600 });
    const primary = await c.primary(await c.tempDir('primary'), {
      args: [...HTTP, '--token-file', tokenFile],
    });
    const url = await httpUrl(primary);
    for (const path of ['/metrics', '/', '/api/status']) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('Basic');
      expect((await fetch(`${url}${path}`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    }
    expect((await fetch(`${url}/livez`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    await scrape(url, { authorization: `Bearer ${secret}` });
    const basic = Buffer.from(`admin:${secret}`).toString('base64');
    const page = await fetch(`${url}/`, { headers: { authorization: `Basic ${basic}` } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const view = await (
      await fetch(`${url}/api/status`, { headers: { authorization: `Bearer ${secret}` } })
    ).json();
    expect(view).toMatchObject({ role: 'primary', ready: true });
    expect((await fetch(`${url}/nothing`)).status).toBe(404);
    expect((await fetch(`${url}/livez`, { method: 'POST' })).status).toBe(405);
  });

  test('bad --http flags are refused in one line', async ({ cluster: c }) => {
    const dir = await c.tempDir('bad');
    const cases: [string[], RegExp][] = [
      [['--http', 'nowhere'], /--http/],
      [['--http', '127.0.0.1:0', '--ready-lag', '-1'], /--ready-lag -1: expected seconds >= 0/],
      [['--http', '127.0.0.1:0', '--ready-mirrors', 'two'], /--ready-mirrors two/],
      [['--http', '0.0.0.0:0'], /ERR_INSECURE|without a token/],
    ];
    for (const [args, message] of cases) {
      const r = await runMimic(['primary', dir, '--listen', '127.0.0.1:0', '--init', ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('mimic:')),
      ).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});
