/*
 * The options every agent command gets beside its own: `--config <file>` (config-file.ts) and
 * `--log-level`. Commander checks required options and arguments before any hook runs, so a
 * command given --config has them relaxed, and checked here once the file is read, with
 * commander's own messages. What a command runs with is kept as its RunningConfig, for a
 * reload on SIGHUP (reload.ts) and for naming the file in a later error (blameConfig).
 */
import type { Command } from 'commander';
import { applyConfig, blameFile, configKeys, readConfigFile } from './config-file.js';
import type { CliError } from './fail.js';
import { holdHangUps } from './node-signals.js';

const lib = () => import('@mimic/agent');

/** What a running agent command was started with. */
export interface RunningConfig {
  readonly cmd: Command;
  /** The --config file, or null. */
  readonly file: string | null;
  /** Keys the command line gave: a reload leaves them as they are. */
  readonly fromCommandLine: ReadonlySet<string>;
  /** Keys whose value came from the file at start. */
  readonly fromFile: readonly string[];
  /** Each key's value in force now (a reload updates what it applied). */
  readonly values: Map<string, unknown>;
}

let running: RunningConfig | null = null;

/** The configuration of the agent command this process runs, once its options are parsed. */
export function runningConfig(): RunningConfig | null {
  return running;
}

/** A failure of the command, naming the key and the file where its value came from there. */
export function blameConfig(err: CliError): CliError {
  return running?.file ? blameFile(err, running.file, running.fromFile) : err;
}

/**
 * Gives `cmd` (fully defined: every option and argument added) --config and --log-level.
 * Call once per command, after its last option.
 */
export function withConfigFile(cmd: Command): Command {
  cmd.option('--config <file>', 'read flags from this TOML file (flags on the command line win)');
  cmd.addOption(
    cmd
      .createOption('--log-level <level>', 'least level of the log lines written')
      .choices(['error', 'warn', 'info', 'debug'])
      .default('info'),
  );
  const mandatory = cmd.options.filter((o) => o.mandatory);
  for (const o of mandatory) o.makeOptionMandatory(false);
  const required = cmd.registeredArguments.filter((a) => a.required);
  for (const a of required) a.argOptional();
  cmd.hook('preAction', async (self) => {
    holdHangUps();
    const file: string | undefined = self.getOptionValue('config');
    const keys = configKeys(self);
    const fromCommandLine = new Set<string>();
    for (const [key, k] of keys) {
      const given = k.option
        ? ![undefined, 'default'].includes(self.getOptionValueSource(k.option.attributeName()))
        : self.processedArgs[k.index] !== undefined;
      if (given) fromCommandLine.add(key);
    }
    const fromFile = file ? applyConfig(self, await readConfigFile(file, self)) : [];
    for (const o of mandatory)
      if (self.getOptionValue(o.attributeName()) === undefined)
        self.error(`error: required option '${o.flags}' not specified`, {
          code: 'commander.missingMandatoryOptionValue',
        });
    for (const a of required)
      if (self.processedArgs[self.registeredArguments.indexOf(a)] === undefined)
        self.error(`error: missing required argument '${a.name()}'`, { code: 'commander.missingArgument' });
    const values = new Map<string, unknown>();
    for (const [key, k] of keys)
      values.set(key, k.option ? self.getOptionValue(k.option.attributeName()) : self.processedArgs[k.index]);
    running = { cmd: self, file: file ?? null, fromCommandLine, fromFile, values };
    (await lib()).setLogLevel(self.getOptionValue('logLevel'));
  });
  return cmd;
}
