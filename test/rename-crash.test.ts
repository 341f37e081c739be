import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { test } from './helpers/cluster.js';
import { writeRandomFile } from './helpers/tree-snapshot.js';

/*
 * A rename's manifest rows and its journal row are one transaction. A primary that dies
 * between pairing a rename and journaling it (the crash point below) restarts with a manifest
 * that does not show the rename either, finds it again, and the resuming mirror receives it.
 */

describe('a primary killed between a rename and its journal row', () => {
  test('restarts with the rename still to journal, and the mirror gets it', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({
      prepare: async (d) => {
        await writeRandomFile(join(d, 'a.bin'), 200_000);
        await writeFile(join(d, 'other.txt'), 'other\n');
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const port = pair.primary.port;
    await pair.primary.stop();

    const crashing = await c.primary(pair.primaryDir, {
      port,
      init: false,
      env: { MIMIC_CRASH_AT: 'rename-before-journal' },
    });
    await rename(join(pair.primaryDir, 'a.bin'), join(pair.primaryDir, 'b.bin'));
    const exit = await crashing.exited;
    expect(exit.signal).toBe('SIGKILL');

    const back = await c.primary(pair.primaryDir, { port, init: false });
    await c.converged(pair.primaryDir, pair.mirrorDir, { timeoutMs: 30_000 });
    expect(await readFile(join(pair.mirrorDir, 'b.bin'))).toEqual(
      await readFile(join(pair.primaryDir, 'b.bin')),
    );
    // It resumed from the journal (no manifest compare hid the missing row).
    expect(pair.mirror.events('connected').at(-1)).toMatchObject({ mode: 'resume' });
    expect(back.running).toBe(true);
  });
});
