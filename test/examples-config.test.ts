import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { MIMIC, runMimic, test, waitFor } from './helpers/cluster.js';
import { startAgent } from './helpers/config-agents.js';

/*
 * The example config files and systemd units in examples/ work as shipped: every flag of the
 * commands is shown in its config file; with every optional key uncommented the file still
 * passes the loader; with its paths and addresses pointed at temp folders and loopback, a
 * primary and a mirror run from them and replicate; the units pass `systemd-analyze verify`.
 */

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));
const WAIT_MS = 20_000;

/** The config keys of `mimic <role>`, from its help: each long flag, `--no-` dropped. */
async function keysOf(role: 'primary' | 'mirror'): Promise<string[]> {
  const r = await runMimic([role, '--help']);
  const flags = [...r.stdout.matchAll(/^ {2}(?:-\w, )?--([a-z][a-z-]*)/gm)].map((m) => m[1]!);
  return [...new Set(flags.map((f) => f.replace(/^no-/, '')))].filter((k) => k !== 'help' && k !== 'config');
}

/** `text` with the (uncommented) line of each key set to a new value; each key must be there. */
function withKeys(text: string, values: Record<string, string>): string {
  let out = text;
  for (const [key, value] of Object.entries(values)) {
    const line = new RegExp(`^${key} = .*$`, 'm');
    expect(out, `examples: an uncommented ${key}`).toMatch(line);
    out = out.replace(line, `${key} = ${JSON.stringify(value)}`);
  }
  return out;
}

/** Whether a one-line failure is the loader's (a key or a value it refuses, or bad TOML). */
const loaderRefusal = (line: string) =>
  /unknown key|invalid TOML|: expected a string or a number|: expected true or false|Allowed choices/.test(
    line,
  );

describe('examples/', () => {
  for (const role of ['primary', 'mirror'] as const) {
    test(`mimic-${role}.toml shows every flag, each one a key the loader takes`, async ({ cluster: c }) => {
      const text = await readFile(join(EXAMPLES, `mimic-${role}.toml`), 'utf8');
      const shown = new Set([...text.matchAll(/^(?:# )?([a-z][a-z-]*) = /gm)].map((m) => m[1]!));
      const keys = await keysOf(role);
      expect(keys.length).toBeGreaterThan(10);
      expect(keys.filter((k) => !shown.has(k))).toEqual([]);
      expect([...shown].filter((k) => k !== 'dir' && !keys.includes(k))).toEqual([]);
      // Every optional key uncommented: the loader takes them all (the run then fails on the
      // files and hosts that do not exist here, not on the file).
      const dir = await c.tempDir('all');
      const all = withKeys(text.replace(/^# ([a-z][a-z-]*) = /gm, '$1 = '), { dir: join(dir, 'missing') });
      const file = join(dir, 'all.toml');
      await writeFile(file, all);
      const r = await runMimic([role, '--config', file], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).not.toBe(0);
      expect(loaderRefusal(r.stderr), r.stderr).toBe(false);
    });
  }

  test('a primary and a mirror run from the example configs and replicate', async ({ cluster: c }) => {
    const [pDir, mDir, etc] = [await c.tempDir('primary'), await c.tempDir('mirror'), await c.tempDir('etc')];
    const token = join(etc, 'token');
    await writeFile(token, 'an example token of more than sixteen bytes\n', { mode: 0o600 });
    const pCfg = join(etc, 'primary.toml');
    await writeFile(
      pCfg,
      withKeys(await readFile(join(EXAMPLES, 'mimic-primary.toml'), 'utf8'), {
        dir: pDir,
        listen: '127.0.0.1:0',
        'token-file': token,
        // nothing listens there: the probes of the other nodes fail at once
        peers: 'ws://127.0.0.1:9',
      }),
    );
    // The example has no `init` (see the unit): a new folder gets its identity from the flag.
    const primary = await startAgent(c, 'primary', pDir, ['--config', pCfg, '--init']);
    const mCfg = join(etc, 'mirror.toml');
    await writeFile(
      mCfg,
      withKeys(await readFile(join(EXAMPLES, 'mimic-mirror.toml'), 'utf8'), {
        dir: mDir,
        primary: primary.url,
        listen: '127.0.0.1:0',
        'token-file': token,
      }),
    );
    await startAgent(c, 'mirror', mDir, ['--config', mCfg]);
    await writeFile(join(pDir, 'index.html'), '<h1>hello</h1>');
    await writeFile(join(pDir, 'draft.tmp'), 'excluded by the example');
    await waitFor(
      async () => (await readFile(join(mDir, 'index.html'), 'utf8').catch(() => '')) === '<h1>hello</h1>',
      WAIT_MS,
      'index.html on the mirror',
      () => c.report(),
    );
    expect(await readFile(join(mDir, 'draft.tmp')).catch(() => null)).toBeNull();
  });

  const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  for (const unit of ['mimic-primary.service', 'mimic-mirror.service']) {
    test.skipIf(!analyze)(`systemd/${unit} passes systemd-analyze verify`, async ({ cluster: c }) => {
      const text = await readFile(join(EXAMPLES, 'systemd', unit), 'utf8');
      for (const line of [
        'Type=notify',
        'NotifyAccess=main',
        'WatchdogSec=30',
        'ExecReload=/bin/kill -HUP $MAINPID',
      ])
        expect(text.split('\n')).toContain(line);
      expect(text).toMatch(
        /^ExecStart=\/usr\/local\/bin\/mimic (primary|mirror) --config \/etc\/mimic\/\S+\.toml$/m,
      );
      // verify wants the binary to exist: the copy runs this checkout's mimic under this node.
      const copy = join(await c.tempDir('unit'), unit);
      await writeFile(
        copy,
        text.replace('ExecStart=/usr/local/bin/mimic ', `ExecStart=${process.execPath} ${MIMIC} `),
      );
      const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr.split('\n').filter((l) => l.includes(unit))).toEqual([]);
    });
  }
});
