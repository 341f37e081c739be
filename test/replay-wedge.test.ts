import { mkdir, readdir, readFile, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { Store } from '../packages/agent/src/node/store.js';
import { type MirrorStatus, sleep, test } from './helpers/cluster.js';

/*
 * A mirror never wedges on a replay. It records its sequence once a group of files has landed,
 * so after a kill it replays ops it had already applied; each must be idempotent against a
 * partly applied batch. And where an op is refused for good, the same refusal twice ends the
 * replay in a reconcile by manifest, instead of a reconnect every 50 ms forever.
 */

/**
 * Rewinds a stopped mirror's applied sequence: as if it died after landing, before recording.
 * `unrecorded`: and with the note a mirror makes before it changes its tree past that sequence.
 */
function rewindApplied(stateDir: string, seq: number, unrecorded = false): void {
  const store = new Store(join(stateDir, 'mimic.db'));
  try {
    store.setAppliedSeq(seq);
    if (unrecorded) store.markUnrecorded();
  } finally {
    store.close();
  }
}

describe('replays never wedge', () => {
  test('a folder replaced by a symlink to an outside folder: replayed ops are already applied, not refused', async ({
    cluster: c,
    expect,
  }) => {
    // The link points at a folder holding a file of the same name, as /etc holds passwd.
    const outside = await c.tempDir('outside');
    await writeFile(join(outside, 'passwd'), 'root:x:0:0 outside the root\n');
    const pair = await c.pair({
      prepare: async (d) => {
        await mkdir(join(d, 'd'));
        await writeFile(join(d, 'd', 'passwd'), 'inside the root\n');
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const before = await pair.mirror.status<MirrorStatus>();
    const p = (rel: string) => join(pair.primaryDir, rel);

    // rm -rf d, in the order rm does it, each step journaled on its own; then the link, and a
    // file beside it written twice.
    await unlink(p('d/passwd'));
    await sleep(300);
    await rm(p('d'), { recursive: true });
    await symlink(outside, p('d'));
    await writeFile(p('beside.txt'), 'first\n');
    await sleep(200);
    await writeFile(p('beside.txt'), 'second\n');
    await c.converged(pair.primaryDir, pair.mirrorDir);
    expect(await readlink(join(pair.mirrorDir, 'd'))).toBe(outside);

    // The mirror dies after landing all of it but before recording it: it replays every op
    // since, against a tree that already holds their result.
    await pair.mirror.kill9();
    rewindApplied(pair.mirror.stateDir, before.appliedSeq);
    const again = await c.mirror(pair.mirrorDir, pair.primary.url);
    await writeFile(p('after.txt'), 'after the replay\n');
    await c.converged(pair.primaryDir, pair.mirrorDir);

    for (const event of ['refused', 'apply-failed', 'replay-refused', 'disconnected'])
      expect(again.events(event), event).toEqual([]);
    expect(again.events('connected')).toHaveLength(1);
    // Nothing outside the root was read into the mirror or written through the link.
    expect(await readdir(outside)).toEqual(['passwd']);
    expect(await readFile(join(outside, 'passwd'), 'utf8')).toBe('root:x:0:0 outside the root\n');
    expect(pair.primary.events('error')).toEqual([]);
  });

  test('a write the mirror refuses twice at the same sequence ends the replay in a reconcile', async ({
    cluster: c,
    expect,
  }) => {
    const outside = await c.tempDir('outside');
    const pair = await c.pair({
      prepare: async (d) => {
        await mkdir(join(d, 'e'));
        await writeFile(join(d, 'e', 'a.txt'), 'a\n');
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    // While the mirror is down, someone swaps its folder for a link (a mirror is read-only by
    // contract; this breaks it): every replay of a write into e/ is refused, as it must be.
    await pair.mirror.stop();
    await rm(join(pair.mirrorDir, 'e'), { recursive: true });
    await symlink(outside, join(pair.mirrorDir, 'e'));
    const mirror = await c.mirror(pair.mirrorDir, pair.primary.url);
    await writeFile(join(pair.primaryDir, 'e', 'b.txt'), 'b\n');

    await c.converged(pair.primaryDir, pair.mirrorDir, { timeoutMs: 30_000 });
    const once = mirror.events('replay-refused');
    expect(once).toHaveLength(1);
    expect(once[0]).toMatchObject({ code: 'ERR_UNSAFE_PATH', path: 'e/b.txt' });
    expect(mirror.events('refused').length).toBe(2);
    expect(await readdir(outside)).toEqual([]);
    // The link itself was not the mirror's to delete: it is kept under diverged/.
    const diverged = await readdir(join(mirror.stateDir, 'diverged'), { recursive: true });
    expect(diverged.some((n) => n.endsWith('e'))).toBe(true);
    expect((await mirror.status<MirrorStatus>()).connected).toBe(true);
  });

  test('a mirror killed with tree changes past its recorded sequence compares manifests, never replays a rename', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({ prepare: (d) => writeFile(join(d, 'a.txt'), 'first\n') });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const before = await pair.mirror.status<MirrorStatus>();
    const p = (rel: string) => join(pair.primaryDir, rel);
    // A replay of this rename after the write would move the new a.txt onto b.txt.
    await rename(p('a.txt'), p('b.txt'));
    await sleep(300);
    await writeFile(p('a.txt'), 'second\n');
    await c.converged(pair.primaryDir, pair.mirrorDir);

    await pair.mirror.kill9();
    rewindApplied(pair.mirror.stateDir, before.appliedSeq, true);
    const again = await c.mirror(pair.mirrorDir, pair.primary.url);
    await c.converged(pair.primaryDir, pair.mirrorDir);
    expect(again.events('unclean-stop')).toHaveLength(1);
    expect(again.events('connected')[0]).toMatchObject({ mode: 'reconcile' });
    expect(await readFile(join(pair.mirrorDir, 'b.txt'), 'utf8')).toBe('first\n');
    expect(await readFile(join(pair.mirrorDir, 'a.txt'), 'utf8')).toBe('second\n');
    // A clean stop records what it applied: the start after it resumes.
    await again.stop();
    const third = await c.mirror(pair.mirrorDir, pair.primary.url);
    expect(third.events('unclean-stop')).toEqual([]);
    expect(third.events('connected')[0]).toMatchObject({ mode: 'resume' });
  });
});
