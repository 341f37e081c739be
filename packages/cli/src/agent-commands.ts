import { join, resolve } from 'node:path';
import { callControl, jsonLogger, Mirror, Primary, parseListen, parsePeerUrl } from '@mimic/agent';
import type { Command } from 'commander';
import { CliError, toCliError } from './fail.js';
import { printStatus } from './status-format.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function urls(list: string, flag: string): string[] {
  return list.split(',').map((u) => {
    try {
      return parsePeerUrl(u.trim());
    } catch (err) {
      throw new CliError('ERR_INVALID_ARGUMENT', `${flag} ${(err as Error).message}`);
    }
  });
}

/** Runs an agent until SIGINT/SIGTERM, then closes it cleanly. */
async function runUntilSignal(agent: { close(): Promise<void> }): Promise<void> {
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void agent.close().finally(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function addAgentCommands(program: Command): void {
  program
    .command('primary')
    .description('serve <dir> as the primary: watch it and push every change to mirrors')
    .argument('<dir>', 'the replicated folder')
    .requiredOption('--listen <host:port>', 'address mirrors connect to')
    .option('--state <dir>', 'state folder (default <dir>/.mimic)')
    .option('--peers <urls>', 'other nodes, comma-separated ws:// URLs')
    .option('--exclude <glob>', 'gitignore-style pattern not to replicate (repeatable)', collect, [])
    .option('--rescan <seconds>', 'full rescan period in seconds (0: never)', '60')
    .action(
      async (
        dir: string,
        opts: { listen: string; state?: string; peers?: string; exclude: string[]; rescan: string },
      ) => {
        let listen: ReturnType<typeof parseListen>;
        try {
          listen = parseListen(opts.listen);
        } catch (err) {
          throw new CliError('ERR_INVALID_ARGUMENT', (err as Error).message);
        }
        if (opts.peers) urls(opts.peers, '--peers');
        const rescan = Number(opts.rescan);
        if (!Number.isFinite(rescan) || rescan < 0)
          throw new CliError('ERR_INVALID_ARGUMENT', `--rescan ${opts.rescan}: expected seconds >= 0`);
        const primary = new Primary({
          root: resolve(dir),
          listen,
          ...(opts.state ? { stateDir: resolve(opts.state) } : {}),
          exclude: opts.exclude,
          rescanIntervalMs: rescan * 1000,
          log: jsonLogger('primary'),
        });
        try {
          await primary.start();
        } catch (err) {
          await primary.close().catch(() => {});
          throw toCliError(err, `primary ${JSON.stringify(dir)}`);
        }
        await runUntilSignal(primary);
      },
    );

  program
    .command('mirror')
    .description('keep <dir> an exact, durable copy of a primary')
    .argument('<dir>', 'the mirror folder (read-only by contract)')
    .requiredOption('--primary <urls>', 'the nodes this mirror may follow, comma-separated ws:// URLs')
    .option('--listen <host:port>', 'address to serve on once promoted')
    .option('--state <dir>', 'state folder (default <dir>/.mimic)')
    .action(async (dir: string, opts: { primary: string; listen?: string; state?: string }) => {
      const primaries = urls(opts.primary, '--primary');
      if (opts.listen) {
        try {
          parseListen(opts.listen);
        } catch (err) {
          throw new CliError('ERR_INVALID_ARGUMENT', (err as Error).message);
        }
      }
      const mirror = new Mirror({
        root: resolve(dir),
        primaries,
        ...(opts.state ? { stateDir: resolve(opts.state) } : {}),
        log: jsonLogger('mirror'),
      });
      try {
        await mirror.start();
      } catch (err) {
        await mirror.close().catch(() => {});
        throw toCliError(err, `mirror ${JSON.stringify(dir)}`);
      }
      await runUntilSignal(mirror);
    });

  program
    .command('status')
    .description('show what the agent with this state folder is doing')
    .option('--state <dir>', 'state folder', join('.', '.mimic'))
    .option('--json', 'one JSON object')
    .action(async (opts: { state: string; json?: boolean }) => {
      const result = await callControl(resolve(opts.state), 'status').catch((err) => {
        throw toCliError(err);
      });
      process.stdout.write(
        opts.json ? `${JSON.stringify(result)}\n` : printStatus(result as Record<string, unknown>),
      );
    });
}
