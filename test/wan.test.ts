import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import {
  type Agent,
  type Cluster,
  type MirrorStatus,
  type PrimaryStatus,
  runMimic,
  test,
  waitFor,
} from './helpers/cluster.js';
import { writeRandomFile } from './helpers/tree-snapshot.js';

/*
 * Slow links: --compress (negotiated in the hello, either side may ask) and --bwlimit (on what a
 * primary sends each mirror, or on what a mirror reads), with real processes on 127.0.0.1.
 */

const KiB = 1024;

/** A tree of text that compresses well: access-log lines, varied enough not to be one run. */
async function writeLogs(dir: string, files = 60, lines = 600): Promise<number> {
  let bytes = 0;
  await mkdir(join(dir, 'logs'), { recursive: true });
  for (let f = 0; f < files; f++) {
    const text = Array.from(
      { length: lines },
      (_, i) =>
        `10.0.${f}.${i % 250} - - [03/Dec/2026:17:${i % 60}:00] "GET /page/${(i * 7919) % 1000} HTTP/1.1" 200 ${i * 13}\n`,
    ).join('');
    await writeFile(join(dir, 'logs', `access-${f}.log`), text);
    bytes += Buffer.byteLength(text);
  }
  return bytes;
}

/** What the primary has sent the one mirror connected to it, and that mirror's link as it sees it. */
async function link(primary: Agent, mirror: Agent) {
  const p = await primary.status<PrimaryStatus>();
  const m = await mirror.status<MirrorStatus>();
  const sent = p.mirrors.find((x) => x.id === m.nodeId);
  if (!sent) throw new Error(`the primary knows no mirror ${m.nodeId}: ${JSON.stringify(p.mirrors)}`);
  return { sent, mirror: m, primary: p };
}

/** A primary on a new folder filled by `prepare`, one mirror with `mirrorArgs`, converged. */
async function converged(
  c: Cluster,
  prepare: (dir: string) => Promise<unknown>,
  primaryArgs: string[],
  mirrorArgs: string[] = [],
) {
  const primaryDir = await c.tempDir('primary');
  const mirrorDir = await c.tempDir('mirror');
  await prepare(primaryDir);
  const primary = await c.primary(primaryDir, { args: primaryArgs });
  const mirror = await c.mirror(mirrorDir, primary.url, { args: mirrorArgs });
  await c.converged(primaryDir, mirrorDir, { timeoutMs: 30_000 });
  await waitFor(
    async () =>
      (await link(primary, mirror)).mirror.appliedSeq === (await primary.status<PrimaryStatus>()).seq,
    15_000,
    'the mirror to report all applied',
    { details: () => c.describe() },
  );
  return { primaryDir, mirrorDir, primary, mirror };
}

/** Milliseconds from now until `mirrorDir` matches `primaryDir`. */
async function timeToConverge(c: Cluster, primaryDir: string, mirrorDir: string): Promise<number> {
  const t0 = performance.now();
  await c.converged(primaryDir, mirrorDir, { timeoutMs: 30_000 });
  return performance.now() - t0;
}

describe.concurrent('compression', () => {
  test('a compressible tree replicates exactly with --compress, for a fraction of the bytes', async ({
    cluster: c,
    expect,
  }) => {
    const [plain, packed] = await Promise.all([
      converged(c, (d) => writeLogs(d), []),
      converged(c, (d) => writeLogs(d), ['--compress']),
    ]);
    const without = await link(plain.primary, plain.mirror);
    const withIt = await link(packed.primary, packed.mirror);
    expect(without.sent.codec).toBeNull();
    expect(withIt.sent.codec).toMatch(/^(zstd|brotli|deflate)$/);
    expect(withIt.mirror.codec).toBe(withIt.sent.codec);
    expect(withIt.sent.bytesSent).toBeLessThan(without.sent.bytesSent / 5);
    // An edit after the first sync travels compressed too.
    await writeFile(join(packed.primaryDir, 'logs/access-0.log'), 'rewritten\n'.repeat(50_000));
    await c.converged(packed.primaryDir, packed.mirrorDir);
    const after = await link(packed.primary, packed.mirror);
    expect(after.sent.bytesSent - withIt.sent.bytesSent).toBeLessThan(50 * KiB);
  });

  test('random content still replicates exactly, sent as it is', async ({ cluster: c, expect }) => {
    const size = 3 * 1024 * KiB;
    const pair = await converged(
      c,
      async (d) => {
        await writeRandomFile(join(d, 'random.bin'), size);
        for (let i = 0; i < 20; i++) await writeRandomFile(join(d, `small-${i}.bin`), 10 * KiB);
      },
      ['--compress'],
    );
    const { sent } = await link(pair.primary, pair.mirror);
    expect(sent.codec).not.toBeNull();
    const content = size + 20 * 10 * KiB;
    expect(sent.bytesSent).toBeGreaterThan(content);
    expect(sent.bytesSent).toBeLessThan(content * 1.02 + 64 * KiB);
  });

  test('a mirror whose hello asks for compression gets it from a primary that did not', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await converged(c, (d) => writeLogs(d, 20), [], ['--compress']);
    const { sent, mirror, primary } = await link(pair.primary, pair.mirror);
    expect(sent.codec).not.toBeNull();
    expect(mirror.codec).toBe(sent.codec);
    expect(primary.bandwidth).toEqual({ perMirror: null, total: null });
    expect(sent.bytesSent).toBeLessThan(150 * KiB);
  });
});

describe.concurrent('bandwidth limits', () => {
  test('--bwlimit 200 on the primary holds a 600 KiB file to about three seconds', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await converged(c, async () => {}, ['--bwlimit', '200', '--bwlimit-total', '1000']);
    const { primary } = await link(pair.primary, pair.mirror);
    expect(primary.bandwidth).toEqual({ perMirror: 200 * KiB, total: 1000 * KiB });
    await writeRandomFile(join(pair.primaryDir, 'big.bin'), 600 * KiB);
    const ms = await timeToConverge(c, pair.primaryDir, pair.mirrorDir);
    expect(ms).toBeGreaterThanOrEqual(2500);
    expect(ms).toBeLessThan(15_000);
  });

  test('--bwlimit 200 on a mirror holds what it reads to the same pace', async ({ cluster: c, expect }) => {
    const pair = await converged(c, async () => {}, [], ['--bwlimit', '200']);
    const { mirror } = await link(pair.primary, pair.mirror);
    expect(mirror.bandwidth).toEqual({ receive: 200 * KiB });
    await writeRandomFile(join(pair.primaryDir, 'big.bin'), 600 * KiB);
    const ms = await timeToConverge(c, pair.primaryDir, pair.mirrorDir);
    expect(ms).toBeGreaterThanOrEqual(2500);
    expect(ms).toBeLessThan(15_000);
  });

  test.for([
    ['primary', '--bwlimit', 'x'],
    ['primary', '--bwlimit-total', '0'],
    ['mirror', '--bwlimit', '-3'],
  ] as const)(
    'mimic %s %s %s exits with one line naming the flag',
    async ([role, flag, value], { cluster: c, expect }) => {
      const dir = await c.tempDir('bad-flag');
      const where =
        role === 'primary' ? ['--listen', '127.0.0.1:0', '--init'] : ['--primary', 'ws://127.0.0.1:1'];
      const r = await runMimic([role, dir, ...where, flag, value]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`mimic: ${flag} ${value}: expected KiB per second > 0 [ERR_INVALID_ARGUMENT]\n`);
    },
  );
});
