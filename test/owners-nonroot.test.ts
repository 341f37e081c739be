import { spawnSync } from 'node:child_process';
import { chmod, chown, lstat, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readXattrs, writeXattrs } from '@mimic/fsmeta';
import { describe } from 'vitest';
import { type Agent, type Cluster, type MirrorStatus, test } from './helpers/cluster.js';
import { treeOf } from './helpers/tree-snapshot.js';
import { webRoot } from './helpers/web-root.js';

/*
 * A mirror that is not root, as rsync -a run by a plain user: it cannot give files away, nor
 * to a group it is not in, so every path stays its own (nobody:nogroup here); content, modes
 * (setuid and setgid included, on what it owns) and user.* xattrs still land. It says once per
 * kind what it could not keep (an `owners-not-kept` line, `notKept` in its status), not once per
 * file. The primary and the test run as root; only the mirror process drops to `nobody`.
 */

const NOBODY = { uid: 65534, gid: 65534 };
const root = process.getuid?.() === 0;
/** Whether a child may be started as nobody here (root, and no sandbox refusing setuid). */
const canDrop = root && spawnSync(process.execPath, ['-e', ''], { ...NOBODY, stdio: 'ignore' }).status === 0;

const XATTRS = { privileged: false, acls: false };

/** The web root, and a user.* xattr on the config (what a non-root mirror can still keep). */
async function tree(d: string): Promise<void> {
  await webRoot(d);
  writeXattrs(join(d, 'app.conf'), [['user.origin', Buffer.from('deploy-7')]], XATTRS);
}

const PATHS = ['uploads', 'uploads/photo.jpg', 'app.conf', 'shared', 'run.sh', 'current.conf'];

const ids = async (p: string) => {
  const st = await lstat(p);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
};

/** The ids the kernel gives a process: `Uid:`, `Gid:` (real, effective, saved, fs) and `Groups:`. */
async function credentials(pid: number): Promise<Record<string, string>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const pick = (key: string) => new RegExp(`^${key}:[ \\t]*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { Uid: pick('Uid'), Gid: pick('Gid'), Groups: pick('Groups') };
}

/** A root primary serving `tree` and a mirror of it run as nobody, in a folder nobody owns. */
async function nobodyPair(c: Cluster): Promise<{ primaryDir: string; mirrorDir: string; mirror: Agent }> {
  const primaryDir = await c.tempDir('primary');
  const mirrorDir = await c.tempDir('mirror');
  await chown(mirrorDir, NOBODY.uid, NOBODY.gid);
  await tree(primaryDir);
  const primary = await c.primary(primaryDir);
  const mirror = await c.mirror(mirrorDir, primary.url, { user: NOBODY });
  return { primaryDir, mirrorDir, mirror };
}

const notKeptLines = (mirror: Agent, what: 'owner' | 'group') =>
  mirror.events('owners-not-kept').filter((l) => l.what === what);

describe.skipIf(!canDrop)('owners and groups on a mirror that is not root', () => {
  test('files land with content and modes but owned by the mirror user', async ({ cluster: c, expect }) => {
    const { primaryDir, mirrorDir, mirror } = await nobodyPair(c);
    expect(await credentials(mirror.pid)).toEqual({
      Uid: '65534\t65534\t65534\t65534',
      Gid: '65534\t65534\t65534\t65534',
      Groups: '',
    });
    // Content, modes and mtimes: the tree helpers do not compare owners.
    await c.converged(primaryDir, mirrorDir);
    const tree = await treeOf(mirrorDir);
    expect(tree.get('run.sh')).toMatchObject({ mode: 0o4755 });
    expect(tree.get('shared')).toMatchObject({ mode: 0o2775 });
    for (const rel of PATHS)
      expect({ rel, ...(await ids(join(mirrorDir, rel))) }).toMatchObject({ rel, ...NOBODY });
    expect(mirror.running).toBe(true);
  });

  test('what it could not keep is in its status and logged once per kind', async ({ cluster: c, expect }) => {
    const { primaryDir, mirrorDir, mirror } = await nobodyPair(c);
    await c.converged(primaryDir, mirrorDir);
    const status = await mirror.status<MirrorStatus>();
    const lines = { owner: notKeptLines(mirror, 'owner'), group: notKeptLines(mirror, 'group') };
    expect({
      notKept: [...status.notKept].sort(),
      owner: lines.owner.length,
      group: lines.group.length,
    }).toEqual({
      notKept: ['group', 'owner'],
      owner: 1,
      group: 1,
    });
    for (const what of ['owner', 'group'] as const)
      expect(lines[what][0]).toMatchObject({ what, error: expect.any(String), hint: expect.any(String) });
  });

  test('a later file owned by another user still lands, with no second owners-not-kept line', async ({
    cluster: c,
    expect,
  }) => {
    const { primaryDir, mirrorDir, mirror } = await nobodyPair(c);
    await c.converged(primaryDir, mirrorDir);
    const count = () => ({
      owner: notKeptLines(mirror, 'owner').length,
      group: notKeptLines(mirror, 'group').length,
    });
    const before = count();

    await writeFile(join(primaryDir, 'later.txt'), 'written after the first sync\n');
    await chown(join(primaryDir, 'later.txt'), 1000, 1000);
    await chmod(join(primaryDir, 'later.txt'), 0o640);
    await c.converged(primaryDir, mirrorDir);

    expect(await ids(join(mirrorDir, 'later.txt'))).toEqual({ ...NOBODY, mode: 0o640 });
    expect(count()).toEqual(before);
    expect(Math.max(before.owner, before.group)).toBeLessThanOrEqual(1);
    expect(mirror.running).toBe(true);
  });

  test('user xattrs land on the files it owns', async ({ cluster: c, expect }) => {
    const { primaryDir, mirrorDir } = await nobodyPair(c);
    await c.converged(primaryDir, mirrorDir);
    expect(readXattrs(join(mirrorDir, 'app.conf'), XATTRS)).toEqual(
      readXattrs(join(primaryDir, 'app.conf'), XATTRS),
    );
    expect(readXattrs(join(mirrorDir, 'app.conf'), XATTRS)).toEqual([
      ['user.origin', Buffer.from('deploy-7')],
    ]);
  });
});
