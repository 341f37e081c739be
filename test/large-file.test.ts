import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from './helpers/cluster.js';
import { writeRandomFile } from './helpers/tree-snapshot.js';

const MiB = 1024 * 1024;

test('a 100 MiB file replicates with the mirror staying below 300 MB of peak RSS', {
  timeout: 120_000,
}, async ({ cluster: c, expect }) => {
  const staging = await c.tempDir('staging');
  const pair = await c.pair();
  const size = 100 * MiB;
  await writeRandomFile(join(staging, 'huge.bin'), size);
  await rename(join(staging, 'huge.bin'), join(pair.primaryDir, 'huge.bin'));
  const tree = await c.converged(pair.primaryDir, pair.mirrorDir, { timeoutMs: 60_000 });
  expect(tree.get('huge.bin')?.size).toBe(size);
  const peak = await pair.mirror.peakRss();
  expect(peak).toBeLessThan(300 * 1000 * 1000);
});
