import { existsSync } from 'node:fs';
import {
  appendFile,
  chmod,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  truncate,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { type Cluster, type Pair, type PrimaryStatus, sleep, test, waitFor } from './helpers/cluster.js';
import { treeOf, writeRandomFile } from './helpers/tree-snapshot.js';

/*
 * Every kind of change made on a primary's folder reaches a live mirror exactly: same types,
 * contents, modes, file and link mtimes (to the ms), link targets.
 */

type Step = [name: string, change: () => Promise<void>];

/** Applies each change on the primary in turn and waits for the mirror to match after each one. */
async function runSteps(c: Cluster, pair: Pair, steps: Step[]): Promise<void> {
  for (const [name, change] of steps) {
    await change();
    try {
      await c.converged(pair.primaryDir, pair.mirrorDir);
    } catch (err) {
      throw new Error(`after "${name}": ${(err as Error).message}`);
    }
  }
}

async function bytesSentTo(pair: Pair): Promise<number> {
  const st = await pair.primary.status<PrimaryStatus>();
  const mirrors = st.mirrors.filter((m) => m.connected);
  if (mirrors.length !== 1) throw new Error(`expected one connected mirror: ${JSON.stringify(st.mirrors)}`);
  return mirrors[0]!.bytesSent;
}

describe.concurrent('every change kind replicates exactly', () => {
  test('file contents: new, rewrite, append, truncate, empty, delete', async ({ cluster: c }) => {
    const pair = await c.pair();
    const f = (rel: string) => join(pair.primaryDir, rel);
    await runSteps(c, pair, [
      ['new file', () => writeFile(f('a.txt'), 'hello\n')],
      ['content change', () => writeFile(f('a.txt'), 'a different and longer content\n')],
      ['append', () => appendFile(f('a.txt'), 'one more line\n')],
      ['truncate', () => truncate(f('a.txt'), 5)],
      ['new empty file', () => writeFile(f('empty'), '')],
      ['truncate to zero', () => truncate(f('a.txt'), 0)],
      ['grow from zero', () => writeRandomFile(f('a.txt'), 300_000)],
      ['delete', () => unlink(f('a.txt'))],
      ['delete the empty file', () => unlink(f('empty'))],
    ]);
  });

  test('folders: empty, nested, delete with contents', async ({ cluster: c }) => {
    const pair = await c.pair();
    const f = (rel: string) => join(pair.primaryDir, rel);
    await runSteps(c, pair, [
      ['new empty folder', () => mkdir(f('empty'))],
      [
        'nested folders with files',
        async () => {
          await mkdir(f('a/b/c/d'), { recursive: true });
          await writeFile(f('a/top.txt'), 'top');
          await writeFile(f('a/b/c/d/deep.txt'), 'deep');
        },
      ],
      ['new folder with a mode', () => mkdir(f('a/private'), { mode: 0o700 })],
      ['delete a folder with contents', () => rm(f('a'), { recursive: true })],
      ['delete an empty folder', () => rm(f('empty'), { recursive: true })],
    ]);
  });

  test('renames and moves travel as renames, not as data', async ({ cluster: c, expect }) => {
    const pair = await c.pair();
    const f = (rel: string) => join(pair.primaryDir, rel);
    const size = 2 * 1024 * 1024;
    await runSteps(c, pair, [
      [
        'a 2 MiB file and a folder',
        async () => {
          await writeRandomFile(f('big.bin'), size);
          await mkdir(f('dir'));
          await writeFile(f('dir/small.txt'), 'small');
        },
      ],
    ]);
    const moves: [name: string, from: string, to: string][] = [
      ['rename of a file', 'big.bin', 'big-renamed.bin'],
      ['move into another folder', 'big-renamed.bin', 'dir/big.bin'],
      ['rename of a folder with contents', 'dir', 'dir-renamed'],
      ['move out of a folder', 'dir-renamed/big.bin', 'back.bin'],
    ];
    for (const [name, from, to] of moves) {
      const before = await bytesSentTo(pair);
      await runSteps(c, pair, [[name, () => rename(f(from), f(to))]]);
      const sent = (await bytesSentTo(pair)) - before;
      expect(sent, `${name}: bytes sent`).toBeLessThan(size / 8);
    }
  });

  test('a file renamed over another arrives whole when the connection never sent it', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({
      prepare: async (dir) => {
        await writeRandomFile(join(dir, 'target.bin'), 256 * 1024);
        await writeRandomFile(join(dir, 'moved.bin'), 300 * 1024);
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    // A new connection: what the mirror holds is known to the primary only as it sends files.
    await pair.mirror.stop();
    const mirror = await c.mirror(pair.mirrorDir, pair.primary.url);
    expect(mirror.events('connected')[0]?.mode).toBe('resume');
    const f = (rel: string) => join(pair.primaryDir, rel);
    const fh = await open(f('target.bin'), 'r+');
    await fh.write(Buffer.from('an edit sent on this connection'), 0, undefined, 4096);
    await fh.close();
    await c.converged(pair.primaryDir, pair.mirrorDir);
    // The mirror's target.bin is now its moved.bin: a delta against the edit sent just before
    // has no basis there.
    await rename(f('moved.bin'), f('target.bin'));
    await c.converged(pair.primaryDir, pair.mirrorDir);
    // The rename alone makes the trees equal: the write that follows it must be acknowledged too.
    await waitFor(
      async () => {
        const st = await pair.primary.status<PrimaryStatus>();
        return st.mirrors.some((m) => m.connected && m.ackedSeq >= st.seq);
      },
      10_000,
      'the mirror to acknowledge the rename and the write after it',
      { details: () => c.report() },
    );
    expect(mirror.events('apply-failed')).toEqual([]);
  });

  test('edits to larger files travel as deltas, edit after edit', async ({ cluster: c, expect }) => {
    const pair = await c.pair();
    const f = (rel: string) => join(pair.primaryDir, rel);
    // Signed as it is read (512 KiB) and signed after it is sent (4 MiB).
    for (const size of [512 * 1024, 4 * 1024 * 1024]) {
      const name = `big-${size}.bin`;
      await runSteps(c, pair, [[`a file of ${size} bytes`, () => writeRandomFile(f(name), size)]]);
      for (let i = 0; i < 3; i++) {
        const before = await bytesSentTo(pair);
        await runSteps(c, pair, [
          [
            `${name}: edit ${i + 1} in place`,
            async () => {
              const fh = await open(f(name), 'r+');
              await fh.write(Buffer.from(`edit number ${i + 1}`), 0, undefined, (size / 4) * (i + 1));
              await fh.close();
            },
          ],
        ]);
        const sent = (await bytesSentTo(pair)) - before;
        expect(sent, `${name}, edit ${i + 1}: bytes sent`).toBeLessThan(size / 8);
      }
    }
  });

  test('metadata only: chmod, touch', async ({ cluster: c, expect }) => {
    const pair = await c.pair({
      prepare: async (dir) => {
        await writeFile(join(dir, 'script.sh'), '#!/bin/sh\necho hi\n');
        await writeFile(join(dir, 'data.txt'), 'data');
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const f = (rel: string) => join(pair.primaryDir, rel);
    const past = new Date('2001-02-03T04:05:06.789Z');
    await runSteps(c, pair, [
      ['chmod +x', () => chmod(f('script.sh'), 0o755)],
      ['chmod 600', () => chmod(f('data.txt'), 0o600)],
      ['touch to a past time', () => utimes(f('data.txt'), past, past)],
      ['touch to now', () => utimes(f('script.sh'), new Date(), new Date())],
    ]);
    const st = await stat(join(pair.mirrorDir, 'data.txt'));
    expect(st.mtime.toISOString()).toBe(past.toISOString());
  });

  test('new files arrive with their modes: ones a umask would strip, and setuid', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair();
    const f = (rel: string) => join(pair.primaryDir, rel);
    const modes: [name: string, mode: number][] = [
      ['world-writable.txt', 0o666],
      ['group-read.txt', 0o640],
      ['setuid.bin', 0o4750],
      ['read-only.txt', 0o444],
    ];
    await runSteps(c, pair, [
      [
        'new files with modes',
        async () => {
          for (const [name, mode] of modes) {
            await writeFile(f(name), `${name}\n`);
            await chmod(f(name), mode);
          }
        },
      ],
    ]);
    for (const [name, mode] of modes) {
      expect((await stat(join(pair.mirrorDir, name))).mode & 0o7777, name).toBe(mode);
    }
  });

  test('metadata only: chmod of a folder', async ({ cluster: c }) => {
    const pair = await c.pair({ prepare: (dir) => mkdir(join(dir, 'd'), { mode: 0o755 }) });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    await runSteps(c, pair, [['chmod 700 a folder', () => chmod(join(pair.primaryDir, 'd'), 0o700)]]);
  });

  test('metadata only: touch of a folder', async ({ cluster: c }) => {
    const pair = await c.pair({
      prepare: async (dir) => {
        await mkdir(join(dir, 'd'));
        await writeFile(join(dir, 'd/file.txt'), 'x');
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const past = new Date('2001-02-03T04:05:06.789Z');
    await utimes(join(pair.primaryDir, 'd'), past, past);
    await c.converged(pair.primaryDir, pair.mirrorDir, { dirMtimes: true });
  });

  test('symlinks are replicated as links: relative, absolute outside the root, to a folder, retargeted', async ({
    cluster: c,
    expect,
  }) => {
    const outside = await c.tempDir('outside');
    await writeFile(join(outside, 'target.txt'), 'outside the root');
    const pair = await c.pair({
      prepare: async (dir) => {
        await mkdir(join(dir, 'data'));
        await writeFile(join(dir, 'data/file.txt'), 'one');
        await writeFile(join(dir, 'data/other.txt'), 'two');
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const f = (rel: string) => join(pair.primaryDir, rel);
    await runSteps(c, pair, [
      ['relative link', () => symlink('data/file.txt', f('rel-link'))],
      ['absolute link outside the root', () => symlink(join(outside, 'target.txt'), f('abs-link'))],
      ['link to a folder', () => symlink('data', f('dir-link'))],
      [
        'retarget',
        async () => {
          await unlink(f('rel-link'));
          await symlink('data/other.txt', f('rel-link'));
        },
      ],
      ['delete a link', () => unlink(f('dir-link'))],
    ]);
    const tree = await treeOf(pair.mirrorDir);
    expect(tree.get('abs-link')).toMatchObject({ type: 'symlink', target: join(outside, 'target.txt') });
    expect(tree.get('rel-link')).toMatchObject({ type: 'symlink', target: 'data/other.txt' });
  });

  test('a dangling symlink is replicated as a link', async ({ cluster: c, expect }) => {
    const pair = await c.pair();
    await runSteps(c, pair, [
      ['dangling link', () => symlink('does/not/exist', join(pair.primaryDir, 'dangling'))],
    ]);
    expect((await treeOf(pair.mirrorDir)).get('dangling')).toMatchObject({
      type: 'symlink',
      target: 'does/not/exist',
    });
  });

  test('a symlink retargeted by renaming another link over it', async ({ cluster: c }) => {
    const pair = await c.pair({ prepare: (dir) => symlink('first-target', join(dir, 'link')) });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const f = (rel: string) => join(pair.primaryDir, rel);
    await runSteps(c, pair, [
      [
        'rename a new link over the old one',
        async () => {
          await symlink('second-target', f('link.new'));
          await rename(f('link.new'), f('link'));
        },
      ],
    ]);
  });

  test('odd names: spaces, a newline, unicode, a leading dash, 255 bytes', async ({ cluster: c, expect }) => {
    const pair = await c.pair();
    const names = [
      'with space.txt',
      'new\nline',
      'ünïcødé-日本語-🙂.txt',
      '-leading-dash',
      'x'.repeat(255),
      'back\\slash',
    ];
    const f = (rel: string) => join(pair.primaryDir, rel);
    await runSteps(c, pair, [
      ...names.map((n): Step => [`create ${JSON.stringify(n)}`, () => writeFile(f(n), `content of ${n}`)]),
      [
        'odd folder names',
        async () => {
          await mkdir(f('dir with space/-dash\nnewline'), { recursive: true });
          await writeFile(f('dir with space/-dash\nnewline/日本'), 'nested');
        },
      ],
      ['rename between odd names', () => rename(f('new\nline'), f(`${'y'.repeat(240)} ünï`))],
      ['change a long-named file', () => writeFile(f('x'.repeat(255)), 'changed')],
      ['delete an odd name', () => unlink(f('-leading-dash'))],
    ]);
    expect(existsSync(join(pair.mirrorDir, 'x'.repeat(255)))).toBe(true);
  });
});

describe.concurrent('bursts', () => {
  test('the last change of a burst arrives, whatever the spacing of the changes before it', async ({
    cluster: c,
  }) => {
    const pair = await c.pair();
    const f = (rel: string) => join(pair.primaryDir, rel);
    // The second file's op reaches the mirror while it is still making the first one durable;
    // the spacing sweeps across that window, twice.
    for (let round = 0; round < 30; round++) {
      const delayMs = round % 15;
      await runSteps(c, pair, [
        [
          `round ${round}: two files ${delayMs} ms apart`,
          async () => {
            await writeFile(f(`r${round}-a.txt`), `a ${round}`);
            await sleep(delayMs);
            await writeFile(f(`r${round}-b.txt`), `b ${round}`);
          },
        ],
      ]);
    }
  });
});

describe.concurrent('content changes that keep size and mtime', () => {
  test('a same-size rewrite with the old mtime restored replicates', async ({ cluster: c, expect }) => {
    const pair = await c.pair();
    const file = join(pair.primaryDir, 'same.txt');
    await writeFile(file, 'A'.repeat(4096));
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const before = await stat(file);
    await writeFile(file, 'B'.repeat(4096));
    // Seconds as a float cannot hold every ms exactly: aim at the middle of the old millisecond.
    const oldMtime = (Math.floor(before.mtimeMs) + 0.5) / 1000;
    await utimes(file, oldMtime, oldMtime);
    const after = await stat(file);
    expect(after.size).toBe(before.size);
    expect(Math.floor(after.mtimeMs)).toBe(Math.floor(before.mtimeMs));
    await c.converged(pair.primaryDir, pair.mirrorDir);
    expect(await readFile(join(pair.mirrorDir, 'same.txt'), 'utf8')).toBe('B'.repeat(4096));
  });
});

describe.concurrent('--exclude', () => {
  const excluded = (rel: string) => rel.endsWith('.log') || /(^|\/)build(\/|$)/.test(rel);

  test('*.log and build/ are not replicated, whether there at start or created later', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({
      exclude: ['*.log', 'build/'],
      prepare: async (dir) => {
        await writeFile(join(dir, 'app.log'), 'log');
        await writeFile(join(dir, 'keep.txt'), 'keep');
        await mkdir(join(dir, 'build'));
        await writeFile(join(dir, 'build/out.js'), 'out');
        await mkdir(join(dir, 'src'));
        await writeFile(join(dir, 'src/deep.log'), 'deep log');
        await writeFile(join(dir, 'src/main.js'), 'main');
      },
    });
    await c.converged(pair.primaryDir, pair.mirrorDir, { ignore: excluded });
    const p = (rel: string) => join(pair.primaryDir, rel);
    await writeFile(p('live.log'), 'live');
    await writeFile(p('src/live.log'), 'live');
    await writeFile(p('build/new.js'), 'new');
    await mkdir(p('src/build/sub'), { recursive: true });
    await writeFile(p('src/build/sub/gen.js'), 'generated');
    await writeFile(p('src/build.txt'), 'a file named like the folder pattern is kept');
    await writeFile(p('sentinel.txt'), 'written last');
    await c.converged(pair.primaryDir, pair.mirrorDir, { ignore: excluded });
    const mirrorPaths = [...(await treeOf(pair.mirrorDir)).keys()];
    expect(mirrorPaths.filter(excluded)).toEqual([]);
    expect(mirrorPaths).toEqual(
      expect.arrayContaining(['keep.txt', 'src/main.js', 'src/build.txt', 'sentinel.txt']),
    );
    // Nor does the primary track them: its manifest holds exactly the replicated paths.
    const st = await pair.primary.status<PrimaryStatus>();
    expect(st.files).toBe((await treeOf(pair.primaryDir, { ignore: excluded })).size);
  });
});

describe.concurrent('a new mirror', () => {
  test('on an empty folder it takes the whole journal, history and all, instead of reconciling', async ({
    cluster: c,
    expect,
  }) => {
    const primaryDir = await c.tempDir('primary');
    const p = (rel: string) => join(primaryDir, rel);
    await mkdir(p('a/b'), { recursive: true });
    await writeFile(p('a/one.txt'), 'one');
    await writeRandomFile(p('a/b/big.bin'), 300_000);
    await symlink('one.txt', p('a/link'));
    const primary = await c.primary(primaryDir);
    // History the replay has to end right: a rename, a folder deleted and a file in its place.
    await rename(p('a/one.txt'), p('a/renamed.txt'));
    await rm(p('a/b'), { recursive: true });
    await writeFile(p('a/b'), 'a file where a folder was');
    await writeFile(p('late.txt'), 'written last');
    // Five rows at the start; the history adds at least four (the rename, the folder's delete,
    // the file in its place, late.txt), and leaves five paths.
    await waitFor(
      async () => {
        const st = await primary.status<PrimaryStatus>();
        return (st.seq >= 9 && st.files === 5) || undefined;
      },
      10_000,
      'the primary to journal the history',
    );
    const mirrorDir = await c.tempDir('mirror');
    const mirror = await c.mirror(mirrorDir, primary.url);
    await c.converged(primaryDir, mirrorDir);
    expect(mirror.events('connected')[0]?.mode).toBe('resume');
    expect(primary.events('mirror-connected')[0]).toMatchObject({ mode: 'resume', from: 1 });
    // And it goes on following like any other.
    await writeFile(p('after.txt'), 'after');
    await c.converged(primaryDir, mirrorDir);
  });
});
