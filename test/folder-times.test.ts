import { lstat, mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { test } from './helpers/cluster.js';
import { waitFor } from './helpers/polling.js';

/*
 * A folder's time is the primary's, not the time its files landed on the mirror: rsync -a sets
 * folder times after their contents, and so does a mirror after each landing.
 */

const OLD = new Date('2001-01-01T00:00:00Z');
const mtimeMs = async (p: string) => (await lstat(p)).mtimeMs;

describe('folder times', () => {
  test('folders keep their old times through the first sync and later writes into them', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({
      prepare: async (d) => {
        await mkdir(join(d, 'archive', 'deep'), { recursive: true });
        await writeFile(join(d, 'archive', 'deep', '2001.txt'), 'old\n');
        await writeFile(join(d, 'archive', 'index.txt'), 'list\n');
        await utimes(join(d, 'archive', 'deep'), OLD, OLD);
        await utimes(join(d, 'archive'), OLD, OLD);
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    expect(await mtimeMs(join(pair.mirrorDir, 'archive'))).toBe(OLD.getTime());
    expect(await mtimeMs(join(pair.mirrorDir, 'archive', 'deep'))).toBe(OLD.getTime());

    // A new file changes the folder's time on the primary; the mirror ends with that time.
    await writeFile(join(pair.primaryDir, 'archive', 'deep', '2002.txt'), 'newer\n');
    const want = await mtimeMs(join(pair.primaryDir, 'archive', 'deep'));
    await c.converged(pair.primaryDir, pair.mirrorDir);
    await waitFor(
      async () => Math.floor(await mtimeMs(join(pair.mirrorDir, 'archive', 'deep'))) === Math.floor(want),
      20_000,
      "archive/deep with the primary's new time",
    );
    expect(await mtimeMs(join(pair.mirrorDir, 'archive'))).toBe(OLD.getTime());
  });
});
