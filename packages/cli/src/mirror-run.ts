/*
 * A `mimic mirror` node for its whole life: following, promoted (by hand, by a failover or a
 * switchover, with its --on-promote hook), and, in a cluster, a primary that stops being the
 * leader rejoining as a mirror of the new one (its own changes since kept under diverged/).
 */
import { resolve } from 'node:path';
import type { ClusterOptions, ClusterSession, ListenAddress, Mirror, Primary } from '@mimic/agent';
import { toCliError } from './fail.js';
import { hookEvent, onDemote, runHook } from './hooks.js';
import { ProgressBar } from './progress-bar.js';
import type { WanAgentOptions } from './wan-options.js';

const lib = () => import('@mimic/agent');

export interface MirrorRun {
  dir: string;
  primaries: string[];
  security: { token?: Uint8Array; tls?: { cert: Buffer; key: Buffer }; tlsCa?: Buffer; insecure: boolean };
  cluster: ClusterOptions | null;
  listen?: ListenAddress;
  state?: string;
  keep: NonNullable<ConstructorParameters<typeof Mirror>[0]['keep']>;
  /** --compress and --bwlimit, in bytes per second. */
  wan?: WanAgentOptions;
  onPromote?: string;
  onDemote?: string;
}

/** A node for its whole life: what a signal closes, and what answers for it now. */
export interface RunningNode {
  close(): Promise<void>;
  /** The agent running now: the mirror, the primary it became, or the mirror that one rejoined as. */
  agent(): Primary | Mirror;
}

/** One agent as a RunningNode. */
export const runningAgent = (a: Primary | Mirror): RunningNode => ({
  close: () => a.close(),
  agent: () => a,
});

export async function startMirror(r: MirrorRun): Promise<RunningNode> {
  const { clusterStatus, joinCluster, jsonLogger, Mirror } = await lib();
  const mirror = new Mirror({
    root: resolve(r.dir),
    primaries: r.primaries,
    ...r.security,
    ...(r.listen ? { listen: r.listen } : {}),
    ...(r.state ? { stateDir: resolve(r.state) } : {}),
    keep: r.keep,
    ...r.wan,
    log: jsonLogger('mirror'),
  });
  try {
    await mirror.start();
  } catch (err) {
    await mirror.close().catch(() => {});
    throw toCliError(err, `mirror ${JSON.stringify(r.dir)}`);
  }
  let session: ClusterSession | undefined;
  if (r.cluster) {
    const url = r.listen ? `${r.security.tls ? 'wss' : 'ws'}://${r.listen.host}:${r.listen.port}` : null;
    try {
      session = await joinCluster(mirror, r.cluster, url, jsonLogger('mirror'));
    } catch (err) {
      await mirror.close().catch(() => {});
      throw toCliError(err, `mirror ${JSON.stringify(r.dir)}: etcd`);
    }
    const s = session;
    mirror.statusExtra = () => ({ cluster: clusterStatus(s) });
  }
  const bar = new ProgressBar();
  mirror.on('progress', (done, total) => bar.update(done, total));
  let current: RunningNode = runningAgent(mirror);
  let standAside = false;
  const node: RunningNode = {
    close: () => current.close().finally(() => session?.close()),
    agent: () => current.agent(),
  };
  mirror.on('promoted', (primary, reason) => {
    current = runningAgent(primary);
    const cluster = r.cluster?.cluster ?? null;
    if (session) {
      const s = session;
      primary.statusExtra = () => ({ cluster: clusterStatus(s) });
      // After its hook failed, this node rejoins standing aside: it would fail the same way.
      const again = () =>
        standAside && r.cluster ? { ...r, cluster: { ...r.cluster, nofailover: true } } : r;
      rejoinWhenDemoted(primary, s, again, (next) => {
        current = next;
        session = undefined; // the rejoined mirror has a session of its own
      });
    }
    onDemote(primary, r.onDemote, cluster);
    if (!r.onPromote) return;
    // A hook that fails gives the leadership up: another mirror may take it.
    runHook(r.onPromote, hookEvent(primary, 'promote', reason, cluster), (code) => {
      if (code === 0 || !session) return;
      standAside = true;
      void session.resign().then(() => primary.status());
    });
  });
  return node;
}

/**
 * In a cluster, a primary that stops being the leader (a switchover, or its lease ran out)
 * becomes a mirror again on its folder, following whichever node leads now.
 */
export function rejoinWhenDemoted(
  primary: Primary,
  session: ClusterSession,
  r: () => MirrorRun,
  started: (node: RunningNode) => void,
): void {
  primary.once('fenced', (_by, reason) => {
    if (reason === 'newer-epoch') return; // another primary fenced it: the operator decides
    void (async () => {
      await primary.close().catch(() => {});
      await session.close().catch(() => {});
      process.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), event: 'rejoining', reason, as: 'mirror' })}\n`,
      );
      try {
        started(await startMirror(r()));
      } catch (err) {
        process.stderr.write(`mimic: rejoining as a mirror: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    })();
  });
}
