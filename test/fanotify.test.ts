import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, open, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeFanotify } from '@mimic/fsmeta';
import { describe } from 'vitest';
import { cleanEnv, track } from './helpers/children.mjs';
import { type Cluster, MIMIC, runMimic, test, waitFor } from './helpers/cluster.js';

/*
 * The fanotify watcher (`--watcher fanotify`, root only) keeps a mirror exact with no rescans
 * to fall back on: every change reaches it through the watcher alone. A bad --watcher value,
 * or fanotify asked for where it cannot be set up, fails at start with one line and a code.
 */

const NOBODY = { uid: 65534, gid: 65534 };
const asRoot = process.getuid?.() === 0;
const fanotify = asRoot && probeFanotify(tmpdir()) === null;
/** Whether a child may be started as nobody here (root, and no sandbox refusing setuid). */
const canDrop =
  asRoot && spawnSync(process.execPath, ['-e', ''], { ...NOBODY, stdio: 'ignore' }).status === 0;

/** Applies `change` on the primary and waits for the mirror to match, naming the step on failure. */
async function step(
  c: Cluster,
  dirs: { primaryDir: string; mirrorDir: string },
  name: string,
  change: () => Promise<void>,
) {
  await change();
  try {
    await c.converged(dirs.primaryDir, dirs.mirrorDir);
  } catch (err) {
    throw new Error(`after "${name}": ${(err as Error).message}`);
  }
}

describe.skipIf(!fanotify)('the fanotify watcher', () => {
  test('every kind of change reaches the mirror through the watcher alone', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({ rescanSeconds: 0, args: ['--watcher', 'fanotify'] });
    expect(pair.primary.events('watcher')).toEqual([expect.objectContaining({ kind: 'fanotify' })]);
    const f = (rel: string) => join(pair.primaryDir, rel);
    const files = Array.from({ length: 60 }, (_, i) => `d${i % 6}/sub${i % 3}/f${i}.txt`);
    await step(c, pair, 'nested new folders with files', async () => {
      for (const rel of files) {
        await mkdir(join(f(rel), '..'), { recursive: true });
        await writeFile(f(rel), `content of ${rel}\n`);
      }
    });
    await step(c, pair, 'a deep folder made at once, with a file', async () => {
      await mkdir(f('deep/a/b/c/d/e'), { recursive: true });
      await writeFile(f('deep/a/b/c/d/e/leaf'), 'leaf');
    });
    await step(c, pair, 'rewrites in place keeping size and mtime', async () => {
      for (const rel of files.slice(0, 10)) {
        const before = await stat(f(rel));
        const fh = await open(f(rel), 'r+');
        await fh.write('CONTENT', 0);
        await fh.close();
        await utimes(f(rel), before.atime, before.mtime);
      }
    });
    await step(c, pair, 'appends and truncation', async () => {
      for (const rel of files.slice(10, 20)) await writeFile(f(rel), 'appended\n', { flag: 'a' });
      const fh = await open(f(files[20]!), 'r+');
      await fh.truncate(3);
      await fh.close();
    });
    await step(c, pair, 'renames of files, within and across folders', async () => {
      await rename(f(files[21]!), f('d0/renamed.txt'));
      await rename(f(files[22]!), f('top-level.txt'));
    });
    await step(c, pair, 'a folder renamed, then written into', async () => {
      await rename(f('d1'), f('d1-moved'));
      await writeFile(f('d1-moved/new-after-move.txt'), 'after');
    });
    await step(c, pair, 'deletes of files and of a folder with contents', async () => {
      await unlink(f(files[30]!));
      await rm(f('d2'), { recursive: true });
    });
    await step(c, pair, 'a mode change', () => chmod(f('top-level.txt'), 0o600));
  });

  test('--watcher auto as root runs fanotify', async ({ cluster: c, expect }) => {
    const dir = await c.tempDir('auto');
    const primary = await c.primary(dir, { args: ['--watcher', 'auto'] });
    expect(primary.events('watcher')).toEqual([expect.objectContaining({ kind: 'fanotify' })]);
  });

  test('auto keeps to inotify where a filesystem is mounted below the root', async ({
    cluster: c,
    expect,
    skip,
  }) => {
    const dir = await c.tempDir('mounts');
    const below = join(dir, 'mnt');
    await mkdir(below);
    if (spawnSync('mount', ['-t', 'tmpfs', 'mimic-test', below], { stdio: 'ignore' }).status !== 0)
      return skip('cannot mount a tmpfs here');
    try {
      const primary = await c.primary(dir);
      const [line] = primary.events('watcher');
      expect(line).toMatchObject({ kind: 'inotify' });
      expect(String(line?.message)).toContain(below);
      await primary.stop();
    } finally {
      spawnSync('umount', [below], { stdio: 'ignore' });
    }
  });
});

describe('--watcher', () => {
  test('a bad value fails at once, in one line with a code', async ({ cluster: c, expect }) => {
    const dir = await c.tempDir('bogus');
    const r = await runMimic(['primary', dir, '--listen', '127.0.0.1:0', '--init', '--watcher', 'bogus']);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain('--watcher bogus');
    expect(lines[0]).toMatch(/\[ERR_INVALID_ARGUMENT\]$/);
  });

  describe.skipIf(!canDrop)('run by a user other than root', () => {
    test('fanotify asked for fails start with ERR_FANOTIFY', async ({ cluster: c, expect }) => {
      const dir = await c.tempDir('nobody');
      await chown(dir, NOBODY.uid, NOBODY.gid);
      const r = await runAsNobody([
        'primary',
        dir,
        '--listen',
        '127.0.0.1:0',
        '--init',
        '--watcher',
        'fanotify',
      ]);
      expect(r.code).not.toBe(0);
      const last = r.stderr.trimEnd().split('\n').at(-1)!;
      expect(last).toMatch(/^mimic: .*fanotify.*\[ERR_FANOTIFY\]$/);
    });

    test('auto falls back to inotify and says why, once', async ({ cluster: c, expect }) => {
      const dir = await c.tempDir('nobody');
      await chown(dir, NOBODY.uid, NOBODY.gid);
      const child = asNobody(['primary', dir, '--listen', '127.0.0.1:0', '--init']);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        await waitFor(
          () => stderr.includes('"event":"ready"'),
          20_000,
          'the primary to be ready',
          () => stderr,
        );
        const lines = stderr.split('\n').filter((l) => l.includes('"event":"watcher"'));
        expect(lines).toHaveLength(1);
        const line = JSON.parse(lines[0]!) as { kind: string; message: string };
        expect(line.kind).toBe('inotify');
        expect(line.message).toBe('watcher: fanotify unavailable (not root); using inotify');
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });
  });
});

/** `mimic <args>` as nobody, stderr piped, tracked until it exits. */
function asNobody(args: readonly string[]): ChildProcess {
  return track(
    spawn(process.execPath, [MIMIC, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: cleanEnv(),
      ...NOBODY,
    }),
  );
}

/** `mimic <args>` run to completion as nobody (killed after 20 s). */
function runAsNobody(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = asNobody(args);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}
