import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { type MirrorStatus, type PrimaryStatus, runMimic, sleep, test, waitFor } from './helpers/cluster.js';
import { treeOf } from './helpers/tree-snapshot.js';

/*
 * A folder's identity keeps an emptied or replaced primary folder from emptying its mirrors:
 * a primary whose root lost its marker refuses to start, and a mirror refuses a primary of
 * another folder, keeping every file it holds.
 */

const MARKER = '.mimic-folder';

/** The one stderr line of a command that failed, and its code in brackets. */
function failure(stderr: string): { line: string; code: string } {
  const lines = stderr.trim().split('\n');
  const line = lines.at(-1) ?? '';
  return { line, code: /\[(ERR_[A-Z_]+)\]$/.exec(line)?.[1] ?? '' };
}

async function markerOf(root: string): Promise<string> {
  return (await readFile(join(root, MARKER), 'utf8')).split('\n', 1)[0]!;
}

describe('folder identity', () => {
  test('a new folder is served only after --init, which writes its marker', async ({
    cluster: c,
    expect,
  }) => {
    const dir = await c.tempDir('primary');
    await writeFile(join(dir, 'index.html'), 'hello\n');
    const r = await runMimic(['primary', dir, '--listen', '127.0.0.1:0']);
    expect(r.code).not.toBe(0);
    const { line, code } = failure(r.stderr);
    expect(code).toBe('ERR_FOLDER_MARKER');
    expect(line).toContain(dir);
    expect(line).toContain('--init');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // Nothing was made in the folder it refused.
    expect(await readdir(dir)).toEqual(['index.html']);

    const primary = await c.primary(dir);
    const id = await markerOf(dir);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect((await primary.status<PrimaryStatus & { folderId: string }>()).folderId).toBe(id);
  });

  test('a new mirror adopts the folder id of its primary and writes its own marker', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({ prepare: (d) => writeFile(join(d, 'a.txt'), 'a\n') });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const id = await markerOf(pair.primaryDir);
    expect(await markerOf(pair.mirrorDir)).toBe(id);
    expect((await pair.mirror.status<MirrorStatus & { folderId: string }>()).folderId).toBe(id);
  });

  test('a primary whose folder lost its marker (a failed mount) refuses to start', async ({
    cluster: c,
    expect,
  }) => {
    const dir = await c.tempDir('primary');
    const state = await c.tempDir('state');
    await writeFile(join(dir, 'a.txt'), 'a\n');
    const first = await c.primary(dir, { state });
    const id = await markerOf(dir);
    await first.stop();
    // The disk did not mount: the mount point is an empty folder. Even --init must not serve it.
    await rename(dir, `${dir}.away`);
    c.dirs.push(`${dir}.away`);
    await mkdir(dir);
    for (const extra of [[], ['--init']]) {
      const r = await runMimic(['primary', dir, '--listen', '127.0.0.1:0', '--state', state, ...extra]);
      expect(r.code).not.toBe(0);
      const { line, code } = failure(r.stderr);
      expect(code).toBe('ERR_FOLDER_MARKER');
      expect(line).toContain(id);
      expect(line).toContain('mounted');
    }
    expect(await readdir(dir)).toEqual([]);
    // A marker naming another folder than the state's is refused too.
    await writeFile(join(dir, MARKER), `${'0'.repeat(32)}\n`);
    const r = await runMimic(['primary', dir, '--listen', '127.0.0.1:0', '--state', state]);
    expect(failure(r.stderr).code).toBe('ERR_FOLDER_MARKER');
  });

  test('a mirror refuses a primary of another folder, keeps its files, says so, and backs off', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({
      prepare: async (d) => {
        await writeFile(join(d, 'a.txt'), 'precious\n');
        await mkdir(join(d, 'sub'));
        await writeFile(join(d, 'sub', 'b.txt'), 'also precious\n');
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const before = await treeOf(pair.mirrorDir);
    const port = pair.primary.port;
    await pair.primary.stop();

    // The primary's folder is moved away and recreated empty, its state with it; an operator
    // then serves it with --init: a new folder, which the mirror must not converge to.
    const away = `${pair.primaryDir}.away`;
    await rename(pair.primaryDir, away);
    c.dirs.push(away);
    await mkdir(pair.primaryDir);
    const impostor = await c.primary(pair.primaryDir, { port });
    const refusedAt = Date.now();
    await pair.mirror.waitForEvent('refused', 15_000);
    await sleep(6000);
    const st = await pair.mirror.status<MirrorStatus & { refused: { code: string; hint: string } | null }>();
    expect(st.connected).toBe(false);
    expect(st.refused?.code).toBe('ERR_FOLDER_ID');
    expect(st.refused?.hint).toMatch(/another folder/);
    const human = await runMimic(['status', '--state', pair.mirror.stateDir]);
    expect(human.stdout).toContain('ERR_FOLDER_ID');
    expect(await treeOf(pair.mirrorDir)).toEqual(before);
    // Backing off: 50 ms doubling, so a handful of tries in these seconds, not hundreds.
    const tries = pair.mirror
      .events('refused')
      .filter((l) => Date.parse(String(l.time)) >= refusedAt - 1000).length;
    expect(tries).toBeGreaterThanOrEqual(1);
    expect(tries).toBeLessThanOrEqual(10);
    const seconds = (Date.now() - refusedAt) / 1000;
    expect(pair.mirror.events().length / seconds).toBeLessThan(5);
    expect(impostor.events('mirror-connected')).toHaveLength(0);

    // The real folder comes back: the mirror follows it again by itself.
    await impostor.stop();
    await rm(pair.primaryDir, { recursive: true, force: true });
    await rename(away, pair.primaryDir);
    const back = await c.primary(pair.primaryDir, { port, init: false });
    await writeFile(join(pair.primaryDir, 'c.txt'), 'after\n');
    await c.converged(pair.primaryDir, pair.mirrorDir, { timeoutMs: 30_000 });
    await waitFor(
      async () => (await pair.mirror.status<MirrorStatus & { refused: unknown }>()).refused === null,
      10_000,
      'the refusal to clear',
    );
    expect(back.running).toBe(true);
    expect(existsSync(join(pair.mirrorDir, 'a.txt'))).toBe(true);
  });
});
