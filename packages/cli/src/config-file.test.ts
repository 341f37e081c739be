import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { addAgentCommands } from './agent-commands.js';
import {
  applyConfig,
  blameFile,
  closest,
  configKeys,
  MAX_CONFIG_BYTES,
  readConfigFile,
} from './config-file.js';
import { runningConfig, withConfigFile } from './config-option.js';
import { CliError } from './fail.js';

const dir = mkdtempSync(join(tmpdir(), 'mimic-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function file(text: string): string {
  const path = join(dir, `c${n++}.toml`);
  writeFileSync(path, text);
  return path;
}

/** The real `mimic primary` and `mimic mirror` commands, with --config and --log-level. */
function commands(): { primary: Command; mirror: Command } {
  const program = new Command('mimic');
  addAgentCommands(program);
  const find = (name: string) => withConfigFile(program.commands.find((c) => c.name() === name)!);
  return { primary: find('primary'), mirror: find('mirror') };
}

async function refusal(p: Promise<unknown>): Promise<CliError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CliError);
  expect((err as CliError).code).toBe('ERR_CONFIG');
  expect((err as CliError).message).not.toContain('\n');
  return err as CliError;
}

describe('config keys', () => {
  it('are the long flag names, `no-` dropped, and the folder argument', () => {
    const { primary, mirror } = commands();
    const keys = configKeys(primary);
    expect(keys.get('dir')?.option).toBeNull();
    expect(keys.get('listen')?.kind).toBe('value');
    expect(keys.get('token-file')?.kind).toBe('value');
    expect(keys.get('exclude')?.kind).toBe('list');
    expect(keys.get('xattrs')?.kind).toBe('switch');
    expect(keys.get('insecure')?.kind).toBe('switch');
    expect(keys.get('log-level')?.kind).toBe('value');
    expect(keys.has('config')).toBe(false);
    expect(keys.has('no-xattrs')).toBe(false);
    expect(configKeys(mirror).get('owner')?.kind).toBe('switch');
    expect(configKeys(mirror).has('exclude')).toBe(false);
  });
});

describe('readConfigFile', () => {
  it('turns values into what the command line would give', async () => {
    const { primary } = commands();
    const cfg = await readConfigFile(
      file(
        [
          'dir = "/srv/www"',
          'listen = "0.0.0.0:7070"',
          'rescan = 60',
          'exclude = ["*.tmp", "cache/"]',
          'xattrs = false',
          'insecure = true',
          'log-level = "warn"',
        ].join('\n'),
      ),
      primary,
    );
    expect(Object.fromEntries(cfg.values)).toEqual({
      dir: '/srv/www',
      listen: '0.0.0.0:7070',
      rescan: '60',
      exclude: ['*.tmp', 'cache/'],
      xattrs: false,
      insecure: true,
      'log-level': 'warn',
    });
    const one = await readConfigFile(file('exclude = "*.log"'), primary);
    expect(one.values.get('exclude')).toEqual(['*.log']);
  });

  it('refuses an unknown key, naming it and the file, with the key meant', async () => {
    const { primary } = commands();
    const path = file('exclud = ["*.tmp"]');
    const err = await refusal(readConfigFile(path, primary));
    expect(err.message).toBe(`${path}: unknown key "exclud" (did you mean "exclude"?)`);
    const far = await refusal(readConfigFile(file('colour = "blue"'), primary));
    expect(far.message).toMatch(/unknown key "colour"$/);
    await refusal(readConfigFile(file('config = "/etc/other.toml"'), primary));
    await refusal(readConfigFile(file('[primary]\nlisten = "127.0.0.1:1"'), primary));
  });

  it('refuses a value of the wrong type, naming the key and the file', async () => {
    const { primary } = commands();
    for (const [text, key] of [
      ['xattrs = "no"', 'xattrs'],
      ['listen = true', 'listen'],
      ['exclude = [1, { a = 1 }]', 'exclude'],
      ['rescan = 1979-05-27', 'rescan'],
      ['log-level = "loud"', 'log-level'],
    ] as const) {
      const path = file(text);
      const err = await refusal(readConfigFile(path, primary));
      expect(err.message.startsWith(`${path}: ${key}`), err.message).toBe(true);
    }
  });

  it('names the file and line of a TOML syntax error', async () => {
    const { primary } = commands();
    const path = file('listen = "127.0.0.1:0"\nrescan = = 5\n');
    const err = await refusal(readConfigFile(path, primary));
    expect(err.message).toMatch(new RegExp(`^${path}:2:\\d+: invalid TOML`));
  });

  it('names a file that cannot be read', async () => {
    const { primary } = commands();
    const missing = join(dir, 'missing.toml');
    expect((await refusal(readConfigFile(missing, primary))).message).toBe(
      `${missing}: no such file or directory`,
    );
    expect((await refusal(readConfigFile(dir, primary))).message).toBe(`${dir}: is a directory`);
    const big = file(`# ${'x'.repeat(MAX_CONFIG_BYTES)}`);
    expect((await refusal(readConfigFile(big, primary))).message).toContain(big);
  });
});

describe('applyConfig', () => {
  it('sets only what the command line left at its default', async () => {
    const { primary } = commands();
    primary.parseOptions(['--listen', '127.0.0.1:9', '--exclude', '*.o']);
    primary.processedArgs = [];
    const cfg = await readConfigFile(
      file('dir = "/srv/www"\nlisten = "0.0.0.0:7070"\nexclude = ["*.tmp"]\nrescan = 5\nacls = false'),
      primary,
    );
    expect(applyConfig(primary, cfg).sort()).toEqual(['acls', 'dir', 'rescan']);
    expect(primary.opts()).toMatchObject({
      listen: '127.0.0.1:9',
      exclude: ['*.o'],
      rescan: '5',
      acls: false,
    });
    expect(primary.getOptionValueSource('rescan')).toBe('config');
    expect(primary.processedArgs[0]).toBe('/srv/www');
  });
});

describe('--config on a command', () => {
  /** A command shaped like the agent commands, whose action records what it was given. */
  function probe() {
    const seen: { dir?: string; opts?: Record<string, unknown> } = {};
    const cmd = new Command('probe')
      .exitOverride()
      .configureOutput({ writeErr: () => {} })
      .argument('<dir>')
      .requiredOption('--listen <host:port>')
      .option('--exclude <glob>', '', (v: string, p: string[]) => [...p, v], [] as string[])
      .action((d: string, opts: Record<string, unknown>) => {
        seen.dir = d;
        seen.opts = opts;
      });
    return { cmd: withConfigFile(cmd), seen };
  }

  it('gives the action the file folded under the command line', async () => {
    const { cmd, seen } = probe();
    const path = file('dir = "/srv/www"\nlisten = "0.0.0.0:7070"\nexclude = ["*.tmp"]\nlog-level = "debug"');
    await cmd.parseAsync(['--config', path, '--listen', '127.0.0.1:1'], { from: 'user' });
    expect(seen).toEqual({
      dir: '/srv/www',
      opts: { config: path, listen: '127.0.0.1:1', exclude: ['*.tmp'], logLevel: 'debug' },
    });
    const rc = runningConfig()!;
    expect(rc.file).toBe(path);
    expect([...rc.fromCommandLine]).toEqual(['listen']);
    expect([...rc.fromFile].sort()).toEqual(['dir', 'exclude', 'log-level']);
    expect(rc.values.get('exclude')).toEqual(['*.tmp']);
  });

  it("still requires the folder and the required flags, with commander's own errors", async () => {
    const fails = async (argv: string[]) => {
      const { cmd } = probe();
      return cmd.parseAsync(argv, { from: 'user' }).then(
        () => null,
        (e: unknown) => (e instanceof CommanderError ? e.code : e),
      );
    };
    expect(await fails(['--listen', '127.0.0.1:1'])).toBe('commander.missingArgument');
    expect(await fails(['/srv/www'])).toBe('commander.missingMandatoryOptionValue');
    expect(await fails(['--config', file('listen = "127.0.0.1:1"')])).toBe('commander.missingArgument');
    expect(await fails(['--config', file('dir = "/srv"')])).toBe('commander.missingMandatoryOptionValue');
  });
});

describe('blameFile', () => {
  it("names the key and the file when the flag's value came from it", () => {
    const err = new CliError('ERR_INVALID_ARGUMENT', '--rescan -1: expected seconds >= 0');
    const blamed = blameFile(err, '/etc/mimic/www.toml', ['rescan', 'dir']);
    expect(blamed.code).toBe('ERR_CONFIG');
    expect(blamed.message).toBe('/etc/mimic/www.toml: rescan -1: expected seconds >= 0');
    expect(blameFile(err, '/etc/mimic/www.toml', ['listen'])).toBe(err);
    const two = new CliError('ERR_INVALID_ARGUMENT', '--tls-cert and --tls-key go together');
    expect(blameFile(two, 'f.toml', ['tls-cert']).message).toBe('f.toml: tls-cert and --tls-key go together');
    // --etcd is not --etcd-ttl
    const ttl = new CliError('ERR_INVALID_ARGUMENT', '--etcd-ttl 1: expected a whole number, at least 2');
    expect(blameFile(ttl, 'f.toml', ['etcd'])).toBe(ttl);
  });
});

describe('closest', () => {
  it('suggests a near key only', () => {
    expect(closest('exclud', ['exclude', 'listen'])).toBe('exclude');
    expect(closest('tokenfile', ['token-file', 'tls-ca'])).toBe('token-file');
    expect(closest('colour', ['exclude', 'listen'])).toBeNull();
  });
});
