import { mkdir, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe } from 'vitest';
import { type MirrorStatus, type PrimaryStatus, sleep, test, waitFor } from './helpers/cluster.js';
import { treeOf, writeRandomFile } from './helpers/tree-snapshot.js';

/*
 * Crashes, restarts and stalls: a mirror killed mid-file, a primary restarted with changes made
 * while it was down, a stopped mirror next to a live one.
 */
const MiB = 1024 * 1024;

describe('faults', () => {
  test('a mirror killed with SIGKILL mid-file converges after a restart, with no leftovers and no second resend', {
    timeout: 120_000,
  }, async ({ cluster: c, expect }) => {
    const staging = await c.tempDir('staging');
    const pair = await c.pair({ prepare: (dir) => writeFile(join(dir, 'small.txt'), 'before the big one') });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const size = 64 * MiB;
    const tmp = join(pair.mirrorDir, '.mimic', 'tmp');

    // Written aside and moved in, so that the primary sees the whole file at once.
    await writeRandomFile(join(staging, 'big.bin'), size);
    await rename(join(staging, 'big.bin'), join(pair.primaryDir, 'big.bin'));
    const partial = await waitFor(
      async () => {
        for (const name of await readdir(tmp)) {
          const st = await stat(join(tmp, name)).catch(() => null);
          if (st && st.size >= MiB && st.size < size) return { name, size: st.size };
        }
        return null;
      },
      60_000,
      'part of big.bin in the mirror temp folder',
      { intervalMs: 2, details: () => c.describe() },
    );
    await pair.mirror.kill9();
    expect(partial.size).toBeLessThan(size);

    const mirror = await c.mirror(pair.mirrorDir, pair.primary.url);
    const tree = await c.converged(pair.primaryDir, pair.mirrorDir, { timeoutMs: 60_000 });
    expect(tree.get('big.bin')?.size).toBe(size);
    // Converged trees already rule out stray files outside .mimic; the temp folder is empty too.
    expect(await readdir(tmp)).toEqual([]);
    const id = (await mirror.status<MirrorStatus>()).nodeId;
    const sent = (await pair.primary.status<PrimaryStatus>()).mirrors.find((x) => x.id === id);
    expect(sent?.bytesSent).toBeLessThan(2 * size);
  });

  test('a primary restarted with the same state picks up changes made while it was down', {
    timeout: 120_000,
  }, async ({ cluster: c, expect }) => {
    const pair = await c.pair({
      prepare: async (dir) => {
        await writeFile(join(dir, 'a.txt'), 'a');
        await writeFile(join(dir, 'b.txt'), 'b');
        await mkdir(join(dir, 'dir'));
        await writeFile(join(dir, 'dir/c.txt'), 'c');
        await writeRandomFile(join(dir, 'big.bin'), MiB);
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const before = await pair.primary.status<PrimaryStatus>();
    expect(await pair.primary.stop()).toEqual({ code: 0, signal: null });
    await waitFor(
      async () => !(await pair.mirror.status<MirrorStatus>()).connected,
      15_000,
      'the mirror to see the primary gone',
      { intervalMs: 200, details: () => c.describe() },
    );

    const p = (rel: string) => join(pair.primaryDir, rel);
    await writeFile(p('a.txt'), 'a, changed while the primary was down');
    await unlink(p('b.txt'));
    await rename(p('dir/c.txt'), p('dir/c-renamed.txt'));
    await mkdir(p('new-dir'));
    await writeFile(p('new-dir/new.txt'), 'new');
    await writeRandomFile(p('big.bin'), MiB);

    const primary = await c.primary(pair.primaryDir, { port: pair.primary.port });
    await c.converged(pair.primaryDir, pair.mirrorDir, { timeoutMs: 20_000 });
    const after = await primary.status<PrimaryStatus>();
    expect(after.seq).toBeGreaterThan(before.seq);
    expect(after.epoch).toEqual(before.epoch);
    await waitFor(
      async () => {
        const st = await pair.mirror.status<MirrorStatus>();
        return st.connected && st.appliedSeq === after.seq;
      },
      15_000,
      `the mirror to report seq ${after.seq} applied`,
      { intervalMs: 200, details: () => c.describe() },
    );
  });

  test('a stopped mirror does not hold back a live one', { timeout: 120_000 }, async ({
    cluster: c,
    expect,
  }) => {
    const primaryDir = await c.tempDir('primary');
    const fastDir = await c.tempDir('fast');
    const slowDir = await c.tempDir('slow');
    const primary = await c.primary(primaryDir);
    await c.mirror(fastDir, primary.url);
    const slow = await c.mirror(slowDir, primary.url);
    await writeFile(join(primaryDir, 'first.txt'), 'both get this');
    await c.converged(primaryDir, fastDir);
    await c.converged(primaryDir, slowDir);

    slow.pause();
    await mkdir(join(primaryDir, 'batch'));
    for (let i = 0; i < 20; i++) await writeRandomFile(join(primaryDir, `batch/file-${i}.bin`), MiB);
    await c.converged(primaryDir, fastDir, { timeoutMs: 20_000 });
    expect(await slow.procState()).toBe('T');
    const slowTree = await treeOf(slowDir);
    expect([...slowTree.keys()].filter((k) => k.startsWith('batch/')).length).toBeLessThan(20);

    slow.resume();
    await c.converged(primaryDir, slowDir, { timeoutMs: 20_000 });
  });

  test('a primary that accepts the connection and never answers: the mirror waits it out', {
    timeout: 60_000,
  }, async ({ cluster: c, expect }) => {
    // Accepts TCP, never completes the WebSocket upgrade: longer than a ping interval.
    const held: Socket[] = [];
    const server = createServer((s) => held.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const dir = await c.tempDir('silent');
      const mirror = await c.mirror(dir, `ws://127.0.0.1:${port}`, { wait: 'spawned' });
      await sleep(7_000);
      expect(mirror.running, mirror.describe()).toBe(true);
      const st = await mirror.status<MirrorStatus>();
      expect(st.connected).toBe(false);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('bytesSent to a mirror only grows across its reconnects', async ({ cluster: c, expect }) => {
    const pair = await c.pair({ prepare: (dir) => writeRandomFile(join(dir, 'data.bin'), MiB) });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const sentTo = async (id: string) =>
      (await pair.primary.status<PrimaryStatus>()).mirrors.find((m) => m.id === id)?.bytesSent ?? 0;
    const id = (await pair.mirror.status<MirrorStatus>()).nodeId;
    const first = await sentTo(id);
    expect(first).toBeGreaterThan(MiB);
    let mirror = pair.mirror;
    const seen = [first];
    for (let i = 0; i < 2; i++) {
      await mirror.stop();
      mirror = await c.mirror(pair.mirrorDir, pair.primary.url);
      await writeFile(join(pair.primaryDir, `after-restart-${i}.txt`), `restart ${i}`);
      await c.converged(pair.primaryDir, pair.mirrorDir);
      seen.push(await sentTo(id));
    }
    for (let i = 1; i < seen.length; i++)
      expect(seen[i], `bytesSent after restart ${i}: ${seen}`).toBeGreaterThan(seen[i - 1]!);
  });
});
