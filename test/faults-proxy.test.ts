import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { FailoverCluster, type NodeProcess, waitFor } from './helpers/failover-cluster.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { type Tree, treeOf } from './helpers/tree-snapshot.js';

/*
 * Network faults between a primary and its mirror: the mirror dials a TCP proxy that cuts
 * every connection in the middle of a transfer, refuses reconnections for a while, or delays
 * every chunk. Whatever happens, the mirror ends up an exact copy, with nothing half-written
 * left in its folder.
 */
const MiB = 1024 * 1024;

/** Writes `size` random bytes aside, then moves the file into place in one rename. */
async function placeRandomFile(staging: string, dest: string, size: number): Promise<void> {
  const tmp = join(staging, `${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    for (let done = 0; done < size; done += MiB) await fh.write(randomBytes(Math.min(MiB, size - done)));
  } finally {
    await fh.close();
  }
  await rename(tmp, dest);
}

/** Regular files outside the state folder. */
function filePaths(tree: Tree): string[] {
  return [...tree].filter(([, e]) => e.type === 'file').map(([p]) => p);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref(),
    ),
  ]);
}

describe('faults through a TCP proxy', () => {
  let c: FailoverCluster;
  let proxy: TcpProxy | null;
  beforeEach(() => {
    c = new FailoverCluster();
    proxy = null;
  });
  afterEach(async () => {
    await proxy?.close();
    await c.cleanup();
  });

  /** A primary on a fresh folder, a proxy in front of it, and a mirror dialing the proxy. */
  async function setup(prepare?: (dir: string) => Promise<void>, delayMs = 0) {
    const base = await c.tempDir('proxy');
    const [P, M, staging] = ['P', 'M', 'staging'].map((n) => join(base, n)) as [string, string, string];
    for (const d of [P, M, staging]) await mkdir(d);
    await prepare?.(P);
    const primary = await c.primary('primary', P, { port: 0 });
    const port = Number(new URL(String(primary.events('listening')[0]!.url)).port);
    const px = await TcpProxy.start({ port });
    px.delayMs = delayMs;
    proxy = px;
    const mirror = await c.mirror('mirror', M, { primaries: [px.url] });
    await c.converged(P, M);
    return { P, M, staging, primary, mirror, proxy: px };
  }

  async function expectExactCopy(P: string, M: string, timeoutMs = 60_000): Promise<Tree> {
    const tree = await c.converged(P, M, timeoutMs);
    // Equal trees already exclude strays; said once more, plainly: no temp file outside .mimic.
    expect(filePaths(await treeOf(M))).toEqual(filePaths(await treeOf(P)));
    return tree;
  }

  function connections(mirror: NodeProcess): number {
    return mirror.events('connected').length;
  }

  test('connections cut twice in the middle of a 32 MiB file', { timeout: 90_000 }, async () => {
    const { P, M, staging, mirror, proxy: px } = await setup((dir) => writeFile(join(dir, 'small.txt'), 'x'));
    const size = 32 * MiB;

    const firstCut = px.cutAfter(8 * MiB);
    await placeRandomFile(staging, join(P, 'big.bin'), size);
    await withTimeout(firstCut, 30_000, 'the first cut');
    expect(existsSync(join(M, 'big.bin'))).toBe(false);
    await mirror.waitForEvent('disconnected', 20_000, 1);

    // The file starts over on the next connection; cut that one too, further in.
    await withTimeout(px.cutAfter(20 * MiB), 30_000, 'the second cut');
    expect(existsSync(join(M, 'big.bin'))).toBe(false);

    const tree = await expectExactCopy(P, M);
    expect(tree.get('big.bin')?.size).toBe(size);
    expect(px.stats.cut).toBeGreaterThanOrEqual(2);
    expect(connections(mirror)).toBeGreaterThanOrEqual(3);
  });

  test('a cut in the middle of a burst of 200 small files, then refused reconnections', {
    timeout: 60_000,
  }, async () => {
    const {
      P,
      M,
      mirror,
      proxy: px,
    } = await setup(async (dir) => {
      for (const d of ['a', 'b', 'c', 'd']) await mkdir(join(dir, d));
    });
    const sizes = Array.from({ length: 200 }, (_, i) => 1000 + ((i * 7919) % 3000));
    const total = sizes.reduce((x, y) => x + y, 0);

    // Refusing starts the moment the cut happens: the mirror dials again within 50 ms, before
    // the burst is written.
    const cut = px.cutAfter(Math.floor(total / 3)).then(() => px.refuseFor(1500));
    for (const [i, size] of sizes.entries()) {
      await writeFile(join(P, 'abcd'[i % 4]!, `f${i}.dat`), randomBytes(size));
    }
    await withTimeout(cut, 30_000, 'the cut');
    await mirror.waitForEvent('disconnected', 20_000, 1);

    const tree = await expectExactCopy(P, M);
    expect(filePaths(tree)).toHaveLength(200);
    expect(px.stats.refused).toBeGreaterThanOrEqual(1);
    expect(connections(mirror)).toBeGreaterThanOrEqual(2);
  });

  test('a change that arrives while the mirror commits the one before is applied without waiting for more', {
    timeout: 60_000,
  }, async () => {
    const { P, M, mirror } = await setup();
    // Two changes a few ms apart, then silence: the second must arrive on its own. (Trials vary
    // the gap so that the second lands before, during and after the mirror's commit of the first.)
    for (let i = 0; i < 40; i++) {
      await writeFile(join(P, `first-${i}.txt`), `first ${i}\n`);
      await new Promise((resolve) => setTimeout(resolve, (i % 8) * 2));
      await writeFile(join(P, `second-${i}.txt`), `second ${i}\n`);
      await waitFor(
        async () => (await readFile(join(M, `second-${i}.txt`), 'utf8').catch(() => '')) === `second ${i}\n`,
        5_000,
        `second-${i}.txt on the mirror with nothing written after it (trial ${i})`,
        () => c.report(),
      );
    }
    await expectExactCopy(P, M);
    expect(mirror.events('apply-failed')).toEqual([]);
  });

  test('50 ms added to every chunk: initial copy, deltas, deletes, renames, and a cut', {
    timeout: 90_000,
  }, async () => {
    const {
      P,
      M,
      staging,
      mirror,
      proxy: px,
    } = await setup(async (dir) => {
      await placeRandomFile(dir, join(dir, 'big.bin'), 4 * MiB);
      for (let i = 0; i < 20; i++) await writeFile(join(dir, `s${i}.txt`), `small ${i}\n`);
    }, 50);
    expect(px.delayMs).toBe(50);

    // Scattered overwrites of the big file, moved into place whole: these travel as a delta.
    const big = await readFile(join(P, 'big.bin'));
    for (let i = 0; i < 16; i++) randomBytes(4096).copy(big, (i * 257 * 1024) % (big.length - 4096));
    await writeFile(join(staging, 'big.bin'), big);
    await rename(join(staging, 'big.bin'), join(P, 'big.bin'));
    for (let i = 20; i < 30; i++) await writeFile(join(P, `s${i}.txt`), `small ${i}\n`);
    await unlink(join(P, 's0.txt'));
    await unlink(join(P, 's1.txt'));
    await rename(join(P, 's2.txt'), join(P, 's2-renamed.txt'));
    await expectExactCopy(P, M);

    // More changes, and every connection reset while they are in flight behind the delay.
    for (let i = 30; i < 60; i++) await writeFile(join(P, `s${i}.txt`), randomBytes(2000 + i));
    await waitFor(() => px.openConnections > 0, 10_000, 'an open connection to cut');
    expect(px.cutAll()).toBeGreaterThanOrEqual(1);
    const tree = await expectExactCopy(P, M);
    expect(tree.get('big.bin')?.sha256).toBe((await treeOf(P)).get('big.bin')?.sha256);
    expect(connections(mirror)).toBeGreaterThanOrEqual(2);
  });
});
