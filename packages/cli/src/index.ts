import { createRequire } from 'node:module';
import type * as commander from 'commander';
import { addAgentCommands } from './agent-commands.js';
import { blameConfig, withConfigFile } from './config-option.js';
import { addDeltaCommands } from './delta-commands.js';
import { formatError, toCliError } from './fail.js';

// Required, not imported: as an ES module import, Node would first scan commander's source for
// its export names, a cost every run of the command pays.
const { Command, CommanderError }: typeof commander = createRequire(import.meta.url)('commander');

export { CliError } from './fail.js';

/** Runs the `mimic` command line; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('mimic')
    .description('Replicated file mirror and rsync-algorithm delta tool')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(run mimic --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) });
  const quiet = (line: string) => {
    if (process.env.MIMIC_VERBOSE) process.stderr.write(`${line}\n`);
  };
  addDeltaCommands(program, quiet);
  addAgentCommands(program);
  for (const cmd of program.commands) if (['primary', 'mirror'].includes(cmd.name())) withConfigFile(cmd);
  for (const cmd of program.commands) cmd.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    process.stderr.write(`${formatError(blameConfig(toCliError(err)))}\n`);
    return 1;
  }
}
