import { join, resolve } from 'node:path';

/**
 * The agent library (SQLite, watcher, sockets) loads only when an agent command runs, so
 * that `mimic signature/delta/patch` start as fast as a small tool should.
 */
const lib = () => import('@mimic/agent');

import type { ClusterSession, PrimaryOptions } from '@mimic/agent';
import type { Command } from 'commander';
import { type ClusterFlags, clusterFlags, clusterOf } from './cluster-options.js';
import { CliError, toCliError } from './fail.js';
import { onDemote } from './hooks.js';
import { type HttpFlags, httpFlags, httpOf, withHttp } from './http-options.js';
import {
  type MirrorRun,
  type RunningNode,
  rejoinWhenDemoted,
  runningAgent,
  startMirror,
} from './mirror-run.js';
import { runUntilSignal } from './node-signals.js';
import { printStatus } from './status-format.js';
import { type WanFlags, wanFlags, wanOf } from './wan-options.js';

interface SecurityFlags {
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  insecure?: boolean;
}

/** Adds the options shared by every agent command that talks to peers. */
function securityOptions(cmd: Command): Command {
  return cmd
    .option('--token-file <file>', 'shared secret (mode 600) every peer must prove it holds; never sent')
    .option('--tls-cert <file>', 'certificate (PEM) to serve wss:// with')
    .option('--tls-key <file>', 'private key (PEM) of --tls-cert')
    .option('--tls-ca <file>', 'CA or self-signed certificate (PEM) to trust when dialing wss://')
    .option('--insecure', 'allow a non-loopback listener without a token');
}

/** Reads the files the security flags name; errors name the file. */
async function loadSecurity(f: SecurityFlags) {
  const { readTokenFile, loadServerTls, loadClientTls } = await lib();
  if (Boolean(f.tlsCert) !== Boolean(f.tlsKey)) {
    throw new CliError('ERR_INVALID_ARGUMENT', '--tls-cert and --tls-key go together');
  }
  const load = async <T>(fn: () => Promise<T>) => {
    try {
      return await fn();
    } catch (err) {
      throw toCliError(err);
    }
  };
  const token = f.tokenFile ? await load(() => readTokenFile(f.tokenFile!)) : undefined;
  const tls = f.tlsCert ? await load(() => loadServerTls({ cert: f.tlsCert!, key: f.tlsKey! })) : undefined;
  const tlsCa = f.tlsCa ? (await load(() => loadClientTls({ ca: f.tlsCa! }))).ca : undefined;
  return {
    ...(token ? { token } : {}),
    ...(tls ? { tls } : {}),
    ...(tlsCa ? { tlsCa } : {}),
    insecure: f.insecure ?? false,
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function urls(list: string, flag: string): Promise<string[]> {
  const { parsePeerUrl } = await lib();
  return list.split(',').map((u) => {
    try {
      return parsePeerUrl(u.trim());
    } catch (err) {
      throw new CliError('ERR_INVALID_ARGUMENT', `${flag} ${(err as Error).message}`);
    }
  });
}

type Watcher = NonNullable<PrimaryOptions['watcher']>;
/** The values of --watcher (see PrimaryOptions.watcher). */
const WATCHER_MODES: readonly Watcher[] = ['auto', 'fanotify', 'inotify'];

interface KeepFlags {
  xattrs: boolean;
  acls: boolean;
}

/** rsync's names for what to copy beyond content: on by default, each flag turns one off. */
function keepOptions(cmd: Command): Command {
  return cmd
    .option('--no-xattrs', 'do not copy extended attributes (user.*; security.* and trusted.* as root)')
    .option('--no-acls', 'do not copy POSIX ACLs (access and default)');
}

const keepOf = (o: KeepFlags) => ({
  ...(o.xattrs ? {} : { xattrs: false }),
  ...(o.acls ? {} : { acls: false }),
});

export function addAgentCommands(program: Command): void {
  wanFlags(httpFlags(clusterFlags(keepOptions(securityOptions(program.command('primary'))))))
    .description('serve <dir> as the primary: watch it and push every change to mirrors')
    .argument('<dir>', 'the replicated folder')
    .requiredOption('--listen <host:port>', 'address mirrors connect to')
    .option('--state <dir>', 'state folder (default <dir>/.mimic)')
    .option(
      '--init',
      'serve <dir> as a new folder: give it a folder id and its marker <dir>/.mimic-folder (once; without it a folder lacking its marker is refused)',
    )
    .option(
      '--peers <urls>',
      'other nodes, comma-separated ws:// URLs (a newer epoch there fences this primary)',
    )
    .option('--exclude <glob>', 'gitignore-style pattern not to replicate (repeatable)', collect, [])
    .option('--rescan <seconds>', 'full rescan period in seconds (0: never)', '60')
    .option(
      '--watcher <mode>',
      'how the folder is watched: auto (fanotify when root and the kernel has it, else inotify), fanotify or inotify',
      'auto',
    )
    .option('--on-demote <cmd>', 'shell command run when this primary stops being the primary (fenced)')
    .option(
      '--journal-keep <rows>',
      'most journal rows kept for mirrors that are behind (one further behind catches up by manifest)',
      '1000000',
    )
    .action(
      async (
        dir: string,
        opts: SecurityFlags & {
          listen: string;
          state?: string;
          peers?: string;
          exclude: string[];
          rescan: string;
          watcher: string;
          journalKeep: string;
          init?: boolean;
          onDemote?: string;
        } & KeepFlags &
          ClusterFlags &
          HttpFlags &
          WanFlags,
      ) => {
        const security = await loadSecurity(opts);
        const cluster = await clusterOf(opts);
        const wan = wanOf(opts);
        const http = await httpOf(opts);
        const { clusterLeadership, clusterStatus, jsonLogger, parseListen, Primary, servePrimary } =
          await lib();
        let listen: ReturnType<typeof parseListen>;
        try {
          listen = parseListen(opts.listen);
        } catch (err) {
          throw new CliError('ERR_INVALID_ARGUMENT', (err as Error).message);
        }
        const peers = opts.peers ? await urls(opts.peers, '--peers') : [];
        const rescan = Number(opts.rescan);
        if (!Number.isFinite(rescan) || rescan < 0)
          throw new CliError('ERR_INVALID_ARGUMENT', `--rescan ${opts.rescan}: expected seconds >= 0`);
        if (!WATCHER_MODES.includes(opts.watcher as Watcher))
          throw new CliError(
            'ERR_INVALID_ARGUMENT',
            `--watcher ${opts.watcher}: expected ${WATCHER_MODES.join(', ')}`,
          );
        const journalKeep = Number(opts.journalKeep);
        if (!Number.isSafeInteger(journalKeep) || journalKeep < 1)
          throw new CliError(
            'ERR_INVALID_ARGUMENT',
            `--journal-keep ${opts.journalKeep}: expected a whole number of rows, at least 1`,
          );
        const primary = new Primary({
          root: resolve(dir),
          listen,
          ...security,
          ...(opts.state ? { stateDir: resolve(opts.state) } : {}),
          exclude: opts.exclude,
          peers,
          rescanIntervalMs: rescan * 1000,
          watcher: opts.watcher as Watcher,
          journalKeep,
          init: opts.init ?? false,
          keep: keepOf(opts),
          ...wan,
          log: jsonLogger('primary'),
          ...(cluster
            ? {
                leadership: clusterLeadership(cluster, jsonLogger('primary'), (s) => {
                  session = s;
                }),
              }
            : {}),
        });
        let session: ClusterSession | undefined;
        // In a cluster with peers, a node that is not (or no longer) the leader follows it.
        const asMirror: MirrorRun | null =
          cluster && peers.length > 0
            ? {
                dir,
                primaries: peers,
                security,
                cluster,
                listen,
                ...(opts.state ? { state: opts.state } : {}),
                keep: keepOf(opts),
                wan,
                ...(opts.onDemote ? { onDemote: opts.onDemote } : {}),
              }
            : null;
        try {
          await primary.start();
        } catch (err) {
          await primary.close().catch(() => {});
          await session?.close();
          if (asMirror && (err as { code?: string }).code === 'ERR_NOT_LEADER') {
            process.stderr.write(
              `${JSON.stringify({ time: new Date().toISOString(), event: 'rejoining', reason: (err as Error).message, as: 'mirror' })}\n`,
            );
            const node = await startMirror(asMirror);
            return runUntilSignal(await withHttp(node, http, security));
          }
          throw toCliError(err, `primary ${JSON.stringify(dir)}`);
        }
        let current: RunningNode = runningAgent(primary);
        onDemote(primary, opts.onDemote, cluster?.cluster ?? null);
        if (session) {
          const s = session;
          servePrimary(primary, s, primary.status().listen, jsonLogger('primary'));
          primary.statusExtra = () => ({ cluster: clusterStatus(s) });
          if (asMirror)
            rejoinWhenDemoted(
              primary,
              s,
              () => asMirror,
              (next) => {
                current = next;
                session = undefined;
              },
            );
        }
        const running: RunningNode = {
          close: () => current.close().finally(() => session?.close()),
          agent: () => current.agent(),
        };
        await runUntilSignal(await withHttp(running, http, security));
      },
    );

  wanFlags(httpFlags(clusterFlags(keepOptions(securityOptions(program.command('mirror'))))))
    .description('keep <dir> an exact, durable copy of a primary')
    .argument('<dir>', 'the mirror folder (read-only by contract)')
    .requiredOption('--primary <urls>', 'the nodes this mirror may follow, comma-separated ws:// URLs')
    .option('--listen <host:port>', 'address to serve on once promoted')
    .option('--state <dir>', 'state folder (default <dir>/.mimic)')
    .option('--on-demote <cmd>', 'shell command run when this node, once promoted, stops being the primary')
    .option(
      '--on-promote <cmd>',
      'shell command run after a promotion (MIMIC_EPOCH, MIMIC_LISTEN in its environment)',
    )
    .option('--no-owner', "do not set the primary's file owners (set by default when run as root)")
    .option('--no-group', "do not set the primary's file groups")
    .action(
      async (
        dir: string,
        opts: SecurityFlags & {
          primary: string;
          listen?: string;
          state?: string;
          onPromote?: string;
          onDemote?: string;
          owner: boolean;
          group: boolean;
        } & KeepFlags &
          ClusterFlags &
          HttpFlags &
          WanFlags,
      ) => {
        const primaries = await urls(opts.primary, '--primary');
        const security = await loadSecurity(opts);
        const cluster = await clusterOf(opts);
        const wan = wanOf(opts);
        const http = await httpOf(opts);
        const { parseListen } = await lib();
        let listen: ReturnType<typeof parseListen> | undefined;
        if (opts.listen) {
          try {
            listen = parseListen(opts.listen);
          } catch (err) {
            throw new CliError('ERR_INVALID_ARGUMENT', (err as Error).message);
          }
        }
        const node = await startMirror({
          dir,
          primaries,
          security,
          cluster,
          ...(listen ? { listen } : {}),
          ...(opts.state ? { state: opts.state } : {}),
          keep: {
            ...keepOf(opts),
            ...(opts.owner ? {} : { owner: false }),
            ...(opts.group ? {} : { group: false }),
          },
          wan,
          ...(opts.onPromote ? { onPromote: opts.onPromote } : {}),
          ...(opts.onDemote ? { onDemote: opts.onDemote } : {}),
        });
        await runUntilSignal(await withHttp(node, http, security));
      },
    );

  program
    .command('switchover')
    .description('hand the primary role of an etcd cluster to <node>: no write lost (a planned failover)')
    .requiredOption('--to <node>', 'the node id of the mirror to take over (see mimic status)')
    .requiredOption('--etcd <urls>', 'etcd endpoints, comma-separated')
    .requiredOption('--cluster <name>', 'the cluster name')
    .option('--timeout <seconds>', 'how long to wait for the new primary', '60')
    .action(async (opts: { to: string; timeout: string } & ClusterFlags) => {
      const cluster = await clusterOf({ ...opts, etcdTtl: '10', priority: '0', maxLag: '0' });
      const { ClusterSession, silentLogger, switchover } = await lib();
      const session = new ClusterSession('switchover', cluster!, silentLogger);
      try {
        const leader = await switchover(session, opts.to, Number(opts.timeout) * 1000);
        process.stdout.write(
          `switched over: ${leader!.node} leads at term ${leader!.term} (${leader!.url})\n`,
        );
      } catch (err) {
        throw toCliError(err, 'switchover');
      } finally {
        await session.close();
      }
    });

  program
    .command('promote')
    .description('turn the running mirror with this state folder into the primary (same as promote-mirror)')
    .option('--state <dir>', 'state folder', join('.', '.mimic'))
    .action(async (opts: { state: string }) => {
      await promote(opts.state);
    });

  program
    .command('status')
    .description('show what the agent with this state folder is doing')
    .option('--state <dir>', 'state folder', join('.', '.mimic'))
    .option('--json', 'one JSON object')
    .action(async (opts: { state: string; json?: boolean }) => {
      const { callControl } = await lib();
      const result = await callControl(resolve(opts.state), 'status').catch((err) => {
        throw toCliError(err);
      });
      process.stdout.write(
        opts.json ? `${JSON.stringify(result)}\n` : printStatus(result as Record<string, unknown>),
      );
    });
}

/** Asks the mirror behind `stateDir` to promote itself; prints the new epoch and address. */
export async function promote(stateDir: string): Promise<void> {
  const state = resolve(stateDir);
  const { callControl } = await lib();
  const status = (await callControl(state, 'status').catch((err) => {
    throw toCliError(err);
  })) as { role: string };
  if (status.role !== 'mirror') {
    throw new CliError(
      'ERR_NOT_MIRROR',
      `the agent with state folder ${state} is a ${status.role}, not a mirror`,
    );
  }
  const result = (await callControl(state, 'promote', 60_000).catch((err) => {
    throw toCliError(err);
  })) as { epoch: { term: number; node: string }; listen: string };
  process.stdout.write(
    `promoted: epoch ${result.epoch.term} (${result.epoch.node}), serving on ${result.listen}\n`,
  );
}
