import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { type MirrorStatus, test } from './helpers/cluster.js';
import { fileHash, hashesBelow, writeRandomFile } from './helpers/tree-snapshot.js';

/*
 * A mirror never silently destroys what it did not write: a local edit, or a file found in the
 * folder it was started on, ends up under `.mimic/diverged/` when the primary's version
 * replaces it. A file already identical to the primary's is adopted as it is.
 */

describe('local changes on a mirror', () => {
  test('a local edit is kept under .mimic/diverged/ when the primary changes that file', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({
      prepare: async (dir) => {
        await writeFile(join(dir, 'small.txt'), 'original\n');
        await writeRandomFile(join(dir, 'large.bin'), 256 * 1024);
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const m = (rel: string) => join(pair.mirrorDir, rel);
    const p = (rel: string) => join(pair.primaryDir, rel);

    await writeFile(m('small.txt'), 'edited on the mirror\n');
    await writeRandomFile(m('large.bin'), 100_000);
    const localSmall = await fileHash(m('small.txt'));
    const localLarge = await fileHash(m('large.bin'));

    await writeFile(p('small.txt'), 'changed on the primary\n');
    const fh = await open(p('large.bin'), 'r+');
    await fh.write(randomBytes(4096), 0, 4096, 100_000);
    await fh.close();

    await c.converged(pair.primaryDir, pair.mirrorDir);
    expect(await readFile(m('small.txt'), 'utf8')).toBe('changed on the primary\n');
    const kept = [...(await hashesBelow(m('.mimic/diverged'))).values()];
    expect(kept).toContain(localSmall);
    expect(kept).toContain(localLarge);
    const st = await pair.mirror.status<MirrorStatus>();
    expect(st.diverged).toBe(2);
  });

  test('a mirror started on a non-empty folder keeps conflicting files and adopts identical ones', async ({
    cluster: c,
    expect,
  }) => {
    const primaryDir = await c.tempDir('primary');
    const mirrorDir = await c.tempDir('mirror');
    const p = (rel: string) => join(primaryDir, rel);
    const m = (rel: string) => join(mirrorDir, rel);
    await writeFile(p('same.txt'), 'the same on both\n');
    await writeFile(p('conflict.txt'), 'the primary version\n');
    await mkdir(p('sub'));
    await writeRandomFile(p('sub/same.bin'), 200_000);

    await writeFile(m('same.txt'), 'the same on both\n');
    const past = new Date('2010-01-01T00:00:00Z');
    await utimes(m('same.txt'), past, past);
    await mkdir(m('sub'));
    await copyFile(p('sub/same.bin'), m('sub/same.bin'));
    await writeFile(m('conflict.txt'), 'a local version\n');
    await writeFile(m('extra.txt'), 'only on the mirror\n');
    const localConflict = await fileHash(m('conflict.txt'));
    const localExtra = await fileHash(m('extra.txt'));
    const inodes = { same: (await stat(m('same.txt'))).ino, bin: (await stat(m('sub/same.bin'))).ino };

    const primary = await c.primary(primaryDir);
    const mirror = await c.mirror(mirrorDir, primary.url);
    await c.converged(primaryDir, mirrorDir);

    const kept = await hashesBelow(m('.mimic/diverged'));
    expect([...kept.values()].sort()).toEqual([localConflict, localExtra].sort());
    expect([...kept.keys()].some((k) => k.endsWith('conflict.txt'))).toBe(true);
    // Adopted in place: the very same files, not fetched again.
    expect((await stat(m('same.txt'))).ino).toBe(inodes.same);
    expect((await stat(m('sub/same.bin'))).ino).toBe(inodes.bin);
    const st = await mirror.status<MirrorStatus>();
    expect(st.diverged).toBe(2);
    // A folder holding files of its own is compared by manifest, never streamed over.
    expect(mirror.events('connected')[0]?.mode).toBe('reconcile');
  });
});
