import { chown, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { type MirrorStatus, test } from './helpers/cluster.js';
import { waitFor } from './helpers/polling.js';
import { webRoot } from './helpers/web-root.js';

/*
 * Owners as numeric ids, as rsync -a --numeric-ids keeps them when it runs as root: a web
 * root's uploads stay www-data's (33) on the mirror, so a web server can still write them after
 * a failover. The chown comes before the chmod, so setgid folders keep their bit.
 */

const root = process.getuid?.() === 0;

const ids = async (p: string) => {
  const st = await lstat(p);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
};

describe.skipIf(!root)('owners and groups (as root)', () => {
  test('files, folders and links land with the primary numeric owners, setuid and setgid kept', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({ prepare: webRoot });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const m = (rel: string) => ids(join(pair.mirrorDir, rel));
    expect(await m('uploads')).toMatchObject({ uid: 33, gid: 33 });
    expect(await m('uploads/photo.jpg')).toMatchObject({ uid: 33, gid: 33 });
    expect(await m('app.conf')).toMatchObject({ uid: 1000, gid: 1000 });
    expect(await m('shared')).toEqual({ uid: 0, gid: 1000, mode: 0o2775 });
    expect(await m('run.sh')).toEqual({ uid: 1000, gid: 1000, mode: 0o4755 });
    expect(await m('current.conf')).toMatchObject({ uid: 1000, gid: 1000 });
    expect((await pair.mirror.status<MirrorStatus>()).notKept).toEqual([]);
  });

  test('a change of owner alone is replicated, to files and folders', async ({ cluster: c, expect }) => {
    const pair = await c.pair({ prepare: webRoot });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    await chown(join(pair.primaryDir, 'app.conf'), 33, 44);
    await chown(join(pair.primaryDir, 'uploads'), 1000, 33);
    await waitFor(
      async () =>
        (await ids(join(pair.mirrorDir, 'app.conf'))).uid === 33 &&
        (await ids(join(pair.mirrorDir, 'uploads'))).uid === 1000,
      20_000,
      'the new owners on the mirror',
    );
    expect(await ids(join(pair.mirrorDir, 'app.conf'))).toMatchObject({ uid: 33, gid: 44 });
    expect(await ids(join(pair.mirrorDir, 'uploads'))).toMatchObject({ uid: 1000, gid: 33 });
  });

  test('a mirror started with --no-owner keeps its own user but the primary groups', async ({
    cluster: c,
    expect,
  }) => {
    const primaryDir = await c.tempDir('primary');
    const mirrorDir = await c.tempDir('mirror');
    await webRoot(primaryDir);
    const primary = await c.primary(primaryDir);
    await c.mirror(mirrorDir, primary.url, { args: ['--no-owner'] });
    await c.converged(primaryDir, mirrorDir);
    expect(await ids(join(mirrorDir, 'app.conf'))).toMatchObject({ uid: 0, gid: 1000 });
    expect(await ids(join(mirrorDir, 'uploads/photo.jpg'))).toMatchObject({ uid: 0, gid: 33 });
  });

  test('a change of owner made while the mirror was down arrives when it catches up', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({ prepare: webRoot });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    await pair.mirror.stop();
    await chown(join(pair.primaryDir, 'app.conf'), 33, 33);
    const again = await c.mirror(pair.mirrorDir, pair.primary.url);
    await waitFor(
      async () => (await ids(join(pair.mirrorDir, 'app.conf'))).uid === 33,
      20_000,
      'the new owner of app.conf',
    );
    expect((await again.status<MirrorStatus>()).connected).toBe(true);
  });
});
