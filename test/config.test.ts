import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import {
  type Agent,
  type Cluster,
  type PrimaryStatus,
  runMimic,
  sleep,
  test,
  waitFor,
} from './helpers/cluster.js';
import { startAgent, tomlString, writeConfig } from './helpers/config-agents.js';

/*
 * `mimic primary|mirror --config <file>`: nodes started from TOML files replicate, flags on the
 * command line win over the file, bad files stop the command with one line naming the key and
 * the file, and SIGHUP applies what can change in a running node.
 */

const WAIT_MS = 20_000;

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, `stderr: ${stderr}`).toHaveLength(1);
  return lines[0]!;
}

/** Waits until `rel` under `root` holds `content`. */
function hasFile(c: Cluster, root: string, rel: string, content: string): Promise<true> {
  return waitFor(
    async () => (await readFile(join(root, rel), 'utf8').catch(() => null)) === content,
    WAIT_MS,
    `${rel} = ${JSON.stringify(content)} in ${root}`,
    () => c.report(),
  );
}

/** Sends SIGHUP and waits for the `count`th line of `event` (reloaded, reload-failed). */
async function hangUp(agent: Agent, event: string, count: number) {
  agent.signal('SIGHUP');
  return agent.waitForEvent(event, WAIT_MS, count);
}

describe.concurrent('config files', () => {
  test('a primary and a mirror started from config files replicate', async ({ cluster: c }) => {
    const [pDir, mDir, cfgDir] = [
      await c.tempDir('primary'),
      await c.tempDir('mirror'),
      await c.tempDir('cfg'),
    ];
    await writeFile(join(pDir, 'a.txt'), 'one');
    await writeFile(join(pDir, 'x.tmp'), 'not replicated');
    const pCfg = await writeConfig(cfgDir, 'primary.toml', [
      `dir = ${tomlString(pDir)}`,
      'listen = "127.0.0.1:0"',
      'init = true',
      'exclude = ["*.tmp"]',
      'rescan = 30',
      'xattrs = true',
    ]);
    const primary = await startAgent(c, 'primary', pDir, ['--config', pCfg]);
    const mCfg = await writeConfig(cfgDir, 'mirror.toml', [
      `dir = ${tomlString(mDir)}`,
      `primary = ${tomlString(primary.url)}`,
      'owner = false',
    ]);
    await startAgent(c, 'mirror', mDir, ['--config', mCfg]);
    await hasFile(c, mDir, 'a.txt', 'one');
    await writeFile(join(pDir, 'b.txt'), 'two');
    await hasFile(c, mDir, 'b.txt', 'two');
    expect(existsSync(join(mDir, 'x.tmp'))).toBe(false);
  });

  test('a flag on the command line wins over the file', async ({ cluster: c }) => {
    const [pDir, mDir, cfgDir] = [
      await c.tempDir('primary'),
      await c.tempDir('mirror'),
      await c.tempDir('cfg'),
    ];
    const pCfg = await writeConfig(cfgDir, 'primary.toml', [
      'dir = "/nonexistent/mimic-config-test"',
      'listen = "not an address"',
      'exclude = ["*.txt"]',
    ]);
    const primary = await startAgent(c, 'primary', pDir, [
      pDir,
      '--config',
      pCfg,
      '--listen',
      '127.0.0.1:0',
      '--exclude',
      '*.log',
      '--init',
    ]);
    await c.mirror(mDir, primary.url);
    await writeFile(join(pDir, 'skipped.log'), 'no');
    await writeFile(join(pDir, 'kept.txt'), 'yes');
    await hasFile(c, mDir, 'kept.txt', 'yes');
    expect(existsSync(join(mDir, 'skipped.log'))).toBe(false);
  });

  test('an unknown key or a bad value: a non-zero exit and one line naming the key and the file', async ({
    cluster: c,
  }) => {
    const [pDir, cfgDir] = [await c.tempDir('primary'), await c.tempDir('cfg')];
    const base = [`dir = ${tomlString(pDir)}`, 'listen = "127.0.0.1:0"', 'init = true'];
    for (const [name, extra, key] of [
      ['unknown.toml', 'exclud = ["*.tmp"]', '"exclud" (did you mean "exclude"?)'],
      ['negative.toml', 'rescan = -1', 'rescan'],
      ['keep.toml', 'journal-keep = "lots"', 'journal-keep'],
      ['type.toml', 'xattrs = "no"', 'xattrs'],
      ['level.toml', 'log-level = "loud"', 'log-level'],
      ['address.toml', 'peers = "http://example.invalid"', 'peers'],
    ] as const) {
      const file = await writeConfig(cfgDir, name, [...base, extra]);
      const r = await runMimic(['primary', '--config', file]);
      expect(r.code, r.stderr).not.toBe(0);
      const line = oneLine(r.stderr);
      expect(line).toContain(`${file}: `);
      expect(line).toContain(key);
      expect(line).toMatch(/\[ERR_CONFIG\]$/);
    }
    const broken = await writeConfig(cfgDir, 'broken.toml', [...base, 'rescan = = 5']);
    const r = await runMimic(['mirror', '--config', broken]);
    expect(r.code).not.toBe(0);
    expect(oneLine(r.stderr)).toMatch(
      new RegExp(`^mimic: ${broken}:4:\\d+: invalid TOML: .*\\[ERR_CONFIG\\]$`),
    );
    const missing = join(cfgDir, 'missing.toml');
    const m = await runMimic(['primary', '--config', missing]);
    expect(m.code).not.toBe(0);
    expect(oneLine(m.stderr)).toBe(`mimic: ${missing}: no such file or directory [ERR_CONFIG]`);
  });

  test('SIGHUP with a new exclude: a newly excluded path stops replicating, a newly included one replicates', async ({
    cluster: c,
  }) => {
    const [pDir, mDir, cfgDir] = [
      await c.tempDir('primary'),
      await c.tempDir('mirror'),
      await c.tempDir('cfg'),
    ];
    await writeFile(join(pDir, 'keep.txt'), 'kept');
    await writeFile(join(pDir, 'skip.tmp'), 'excluded at first');
    await mkdir(join(pDir, 'cache'));
    await writeFile(join(pDir, 'cache', 'old.txt'), 'old');
    const config = (exclude: string) => [
      `dir = ${tomlString(pDir)}`,
      'listen = "127.0.0.1:0"',
      'init = true',
      `exclude = ${exclude}`,
      // no periodic rescan: what is newly included comes from the reload's own scan
      'rescan = 0',
    ];
    const pCfg = await writeConfig(cfgDir, 'primary.toml', config('["*.tmp"]'));
    const primary = await startAgent(c, 'primary', pDir, ['--config', pCfg]);
    await c.mirror(mDir, primary.url);
    await hasFile(c, mDir, 'cache/old.txt', 'old');
    await hasFile(c, mDir, 'keep.txt', 'kept');
    expect(existsSync(join(mDir, 'skip.tmp'))).toBe(false);

    await writeConfig(cfgDir, 'primary.toml', config('["cache/"]'));
    const reloaded = await hangUp(primary, 'reloaded', 1);
    expect(reloaded).toMatchObject({ applied: ['exclude'], needsRestart: [] });
    await hasFile(c, mDir, 'skip.tmp', 'excluded at first');
    await writeFile(join(pDir, 'cache', 'old.txt'), 'changed');
    await writeFile(join(pDir, 'cache', 'new.txt'), 'new');
    await writeFile(join(pDir, 'marker.txt'), 'after');
    await hasFile(c, mDir, 'marker.txt', 'after');
    await sleep(500);
    // What the mirror had of the newly excluded folder stays as it was.
    expect(await readFile(join(mDir, 'cache', 'old.txt'), 'utf8')).toBe('old');
    expect(existsSync(join(mDir, 'cache', 'new.txt'))).toBe(false);
  });

  test('SIGHUP: a changed listen needs a restart; a broken file keeps the node running', async ({
    cluster: c,
  }) => {
    const [pDir, mDir, cfgDir] = [
      await c.tempDir('primary'),
      await c.tempDir('mirror'),
      await c.tempDir('cfg'),
    ];
    const base = [`dir = ${tomlString(pDir)}`, 'init = true'];
    const pCfg = await writeConfig(cfgDir, 'primary.toml', [...base, 'listen = "127.0.0.1:0"']);
    const primary = await startAgent(c, 'primary', pDir, ['--config', pCfg]);
    await c.mirror(mDir, primary.url);

    await writeConfig(cfgDir, 'primary.toml', [...base, 'listen = "127.0.0.1:1"', 'log-level = "debug"']);
    const reloaded = await hangUp(primary, 'reloaded', 1);
    expect(reloaded).toMatchObject({ config: pCfg, applied: ['log-level'], needsRestart: ['listen'] });

    await writeFile(pCfg, 'listen = \n');
    const failed = await hangUp(primary, 'reload-failed', 1);
    expect(failed).toMatchObject({ config: pCfg, code: 'ERR_CONFIG' });
    expect(String(failed.error)).toMatch(new RegExp(`^${pCfg}:1:\\d+: invalid TOML`));
    await writeConfig(cfgDir, 'primary.toml', [...base, 'listen = "127.0.0.1:0"', 'exclud = []']);
    const unknown = await hangUp(primary, 'reload-failed', 2);
    expect(String(unknown.error)).toContain('"exclud"');

    expect(primary.running).toBe(true);
    await writeFile(join(pDir, 'still.txt'), 'serving');
    await hasFile(c, mDir, 'still.txt', 'serving');
  });

  test('a SIGHUP while the node starts is kept, and the reload runs once it serves', async ({
    cluster: c,
  }) => {
    const [pDir, cfgDir] = [await c.tempDir('primary'), await c.tempDir('cfg')];
    for (let i = 0; i < 200; i++) await writeFile(join(pDir, `f${i}.txt`), `file ${i}`);
    const pCfg = await writeConfig(cfgDir, 'primary.toml', [
      `dir = ${tomlString(pDir)}`,
      'init = true',
      'listen = "127.0.0.1:0"',
    ]);
    const primary = await startAgent(c, 'primary', pDir, ['--config', pCfg], { wait: 'spawned' });
    await primary.waitForEvent('listening', WAIT_MS);
    primary.signal('SIGHUP');
    await primary.waitForEvent('ready', WAIT_MS);
    expect(await primary.waitForEvent('reloaded', WAIT_MS)).toMatchObject({ applied: [], needsRestart: [] });
    expect(primary.running).toBe(true);
  });

  test('SIGHUP changes bandwidth limits at once; a bad one changes nothing', async ({ cluster: c }) => {
    const [pDir, mDir, cfgDir] = [
      await c.tempDir('primary'),
      await c.tempDir('mirror'),
      await c.tempDir('cfg'),
    ];
    const base = [`dir = ${tomlString(pDir)}`, 'init = true', 'listen = "127.0.0.1:0"'];
    const pCfg = await writeConfig(cfgDir, 'primary.toml', [...base, 'bwlimit = 1000']);
    const primary = await startAgent(c, 'primary', pDir, ['--config', pCfg]);
    expect((await primary.status<PrimaryStatus>()).bandwidth).toEqual({
      perMirror: 1000 * 1024,
      total: null,
    });
    const mLines = [`dir = ${tomlString(mDir)}`, `primary = ${tomlString(primary.url)}`];
    const mCfg = await writeConfig(cfgDir, 'mirror.toml', mLines);
    const mirror = await startAgent(c, 'mirror', mDir, ['--config', mCfg]);

    await writeConfig(cfgDir, 'primary.toml', [...base, 'bwlimit-total = 2048.5', 'exclude = ["*.tmp"]']);
    const reloaded = await hangUp(primary, 'reloaded', 1);
    expect([...(reloaded.applied as string[])].sort()).toEqual(['bwlimit', 'bwlimit-total', 'exclude']);
    expect(reloaded.needsRestart).toEqual([]);
    expect((await primary.status<PrimaryStatus>()).bandwidth).toEqual({
      perMirror: null,
      total: Math.round(2048.5 * 1024),
    });

    await writeConfig(cfgDir, 'primary.toml', [...base, 'bwlimit = 0', 'exclude = ["*.log"]']);
    const failed = await hangUp(primary, 'reload-failed', 1);
    expect(failed).toMatchObject({
      code: 'ERR_CONFIG',
      error: `${pCfg}: bwlimit 0: expected KiB per second > 0`,
    });
    expect((await primary.status<PrimaryStatus>()).bandwidth.total).toBe(Math.round(2048.5 * 1024));

    // A mirror limits what it reads at once; its total limit is a primary's, for once promoted.
    await writeConfig(cfgDir, 'mirror.toml', [...mLines, 'bwlimit = 64', 'bwlimit-total = 128']);
    expect(await hangUp(mirror, 'reloaded', 1)).toMatchObject({
      applied: ['bwlimit'],
      needsRestart: ['bwlimit-total'],
    });
    await writeFile(join(pDir, 'after.txt'), 'limited');
    await hasFile(c, mDir, 'after.txt', 'limited');
  });

  test('SIGHUP on a mirror changes its log level at once', async ({ cluster: c }) => {
    const [mDir, cfgDir] = [await c.tempDir('mirror'), await c.tempDir('cfg')];
    const primary = await c.primary(await c.tempDir('primary'));
    const lines = [`dir = ${tomlString(mDir)}`, `primary = ${tomlString(primary.url)}`];
    const mCfg = await writeConfig(cfgDir, 'mirror.toml', [...lines, 'log-level = "info"']);
    const mirror = await startAgent(c, 'mirror', mDir, ['--config', mCfg]);
    await writeConfig(cfgDir, 'mirror.toml', [...lines, 'log-level = "error"']);
    const reloaded = await hangUp(mirror, 'reloaded', 1);
    expect(reloaded).toMatchObject({ applied: ['log-level'], needsRestart: [] });
    await primary.stop();
    await sleep(1500);
    // disconnected and retrying are warnings: no longer written once the reload is done.
    const after = mirror.events().slice(mirror.events().findIndex((l) => l.event === 'reloaded') + 1);
    expect(after.filter((l) => l.event === 'disconnected' || l.event === 'retrying')).toEqual([]);
    expect(mirror.running).toBe(true);
  });
});
