import { open, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { seededBytes } from './helpers/bytes.js';
import { type MirrorStatus, test } from './helpers/cluster.js';

/*
 * Sparse files: holes stay holes on the mirror and do not travel. The primary reads a sparse
 * file by its data regions (SEEK_DATA/SEEK_HOLE) and sends only those; the mirror leaves the
 * rest unwritten, and keeps it so through a delta. A 1 GiB disk image with 8 KiB of data costs
 * kilobytes on the wire and on disk. Contents are compared by the streamed hashes of the
 * converged trees, never a GiB in memory.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

async function writeAt(path: string, flags: 'w' | 'r+', size: number | null, data: [number, Uint8Array][]) {
  const fh = await open(path, flags);
  try {
    if (size !== null) await fh.truncate(size);
    for (const [offset, bytes] of data) await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

const diskUsage = async (path: string) => (await stat(path)).blocks * 512;

test('a 1 GiB file with 8 KiB of data lands sparse and stays so through a change, at kilobytes on the wire', {
  timeout: 240_000,
}, async ({ cluster: c, expect }) => {
  const staging = await c.tempDir('staging');
  const pair = await c.pair();
  const image = join(staging, 'disk.img');
  await writeAt(image, 'w', GiB, [
    [GiB / 2, seededBytes(4 * KiB, 1)],
    [GiB - 4 * KiB, seededBytes(4 * KiB, 2)],
  ]);
  await rename(image, join(pair.primaryDir, 'disk.img'));
  const mirrored = join(pair.mirrorDir, 'disk.img');

  const tree = await c.converged(pair.primaryDir, pair.mirrorDir, { timeoutMs: 120_000 });
  expect(tree.get('disk.img')?.size).toBe(GiB);
  expect(await diskUsage(mirrored)).toBeLessThanOrEqual(64 * KiB);
  const first = (await pair.mirror.status<MirrorStatus>()).bytesReceived;
  expect(first).toBeLessThan(MiB);

  // 4 KiB in the middle changes: it lands, and the holes are still holes.
  await writeAt(join(pair.primaryDir, 'disk.img'), 'r+', null, [[GiB / 2, seededBytes(4 * KiB, 3)]]);
  const changed = await c.converged(pair.primaryDir, pair.mirrorDir, { timeoutMs: 120_000 });
  expect(changed.get('disk.img')?.sha256).not.toBe(tree.get('disk.img')?.sha256);
  expect(await diskUsage(mirrored)).toBeLessThanOrEqual(64 * KiB);
  expect((await pair.mirror.status<MirrorStatus>()).bytesReceived - first).toBeLessThan(MiB);
});
