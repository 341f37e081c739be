/*
 * `--http host:port` on `mimic primary` and `mimic mirror`: the node's health checks, metrics
 * and status page (see @mimic/agent's serveHttp), served for the whole life of the node, across
 * promotions and rejoins.
 */
import type { Command } from 'commander';
import { CliError, toCliError } from './fail.js';
import type { RunningNode } from './mirror-run.js';

const lib = () => import('@mimic/agent');

export interface HttpFlags {
  http?: string;
  readyLag: string;
  readyMirrors: string;
}

export function httpFlags(cmd: Command): Command {
  return cmd
    .option('--http <host:port>', 'serve /livez, /readyz, /metrics and the status page (/) here')
    .option('--ready-lag <seconds>', '/readyz: a mirror is ready while at most this far behind', '10')
    .option('--ready-mirrors <n>', '/readyz: a primary is ready while this many mirrors are in step', '0');
}

/** The checked flags (errors name the flag), or null without --http. */
export async function httpOf(f: HttpFlags) {
  if (!f.http) return null;
  const { parseListen } = await lib();
  let listen: ReturnType<typeof parseListen>;
  try {
    listen = parseListen(f.http);
  } catch (err) {
    throw new CliError('ERR_INVALID_ARGUMENT', `--http ${(err as Error).message}`);
  }
  const lag = Number(f.readyLag);
  if (!Number.isFinite(lag) || lag < 0)
    throw new CliError('ERR_INVALID_ARGUMENT', `--ready-lag ${f.readyLag}: expected seconds >= 0`);
  const mirrors = Number(f.readyMirrors);
  if (!Number.isSafeInteger(mirrors) || mirrors < 0)
    throw new CliError(
      'ERR_INVALID_ARGUMENT',
      `--ready-mirrors ${f.readyMirrors}: expected a whole number >= 0`,
    );
  return { listen, ready: { readyLagSeconds: lag, readyMirrors: mirrors } };
}

/**
 * Serves the endpoint for `node` (the agent it runs at each request) and logs where; the node
 * returned also closes the endpoint. Without --http, `node` itself.
 */
export async function withHttp(
  node: RunningNode,
  http: Awaited<ReturnType<typeof httpOf>>,
  security: { token?: Uint8Array; tls?: { cert: Buffer; key: Buffer }; insecure: boolean },
): Promise<RunningNode> {
  if (!http) return node;
  const { jsonLogger, serveHttp } = await lib();
  const log = jsonLogger('http');
  let endpoint: Awaited<ReturnType<typeof serveHttp>>;
  try {
    endpoint = await serveHttp(() => node.agent(), {
      ...http,
      token: security.token ?? null,
      tls: security.tls ?? null,
      insecure: security.insecure,
      log,
    });
  } catch (err) {
    await node.close().catch(() => {});
    throw toCliError(err);
  }
  log('http', { url: endpoint.url });
  return {
    agent: () => node.agent(),
    close: () => endpoint.close().finally(() => node.close()),
  };
}
