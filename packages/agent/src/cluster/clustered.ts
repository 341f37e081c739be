/*
 * cluster/: automatic failover on etcd.
 *
 *   cluster-keys.ts     the keys under /mimic/<cluster>/, their values, and who takes over
 *   lease-clock.ts      how long a lease holder may act: from each keepalive's send time
 *   cluster-session.ts  one node's etcd session: lease, member key, leader transaction, reads
 *   elector.ts          a mirror watching for the leader key to go, and taking over if best
 *   clustered.ts        a Primary or a Mirror joined to a cluster (this file)
 *
 * A primary started with a cluster takes the leader key (one transaction with the term
 * counter) before it serves, and may write only while its lease is valid; a mirror publishes
 * its position and, when the leader is gone, the best-placed one takes over. Manual promotion
 * goes through the same transaction.
 */

import type { Mirror } from '../mirror/mirror.js';
import { AgentError } from '../node/errors.js';
import type { Leadership, LeadershipSource } from '../node/leadership.js';
import type { Logger } from '../node/log.js';
import type { Primary } from '../primary/primary.js';
import { type ClusterOptions, ClusterSession, type ClusterView } from './cluster-session.js';
import { Elector } from './elector.js';

/** What `mimic status` shows of the cluster. */
export interface ClusterStatus {
  cluster: string;
  etcdReachable: boolean;
  leader: ClusterView['leader'];
  term: number;
  members: {
    id: string;
    role: string;
    seq: number;
    lag: number | null;
    url: string | null;
    nofailover: boolean;
  }[];
}

export function clusterStatus(session: ClusterSession): ClusterStatus {
  const view = session.lastView;
  const primarySeq = view?.members.find((m) => m.id === view.leader?.node)?.seq ?? null;
  return {
    cluster: session.options.cluster,
    etcdReachable: session.reachable,
    leader: view?.leader ?? null,
    term: view?.term ?? 0,
    members: (view?.members ?? []).map((m) => ({
      id: m.id,
      role: m.role,
      seq: m.seq,
      lag: primarySeq === null || m.role !== 'mirror' ? null : Math.max(0, primarySeq - m.seq),
      url: m.url,
      nofailover: m.nofailover,
    })),
  };
}

/** Publishes what a running primary is: its role, last sequence and term. */
function primaryPosition(p: Primary, url: string): ClusterSession['position'] {
  return () => {
    const s = p.status();
    return { role: s.role, seq: s.seq, term: s.epoch.term, url };
  };
}

/**
 * The leadership source for a Primary started with a cluster: a session on etcd, then the
 * leader transaction. `joined` gets the session once it exists (for status and shutdown).
 */
export function clusterLeadership(
  options: ClusterOptions,
  log: Logger,
  joined: (session: ClusterSession, lead: Leadership) => void,
): LeadershipSource {
  return async (nodeId, current, url) => {
    const session = new ClusterSession(nodeId, options, log);
    await session.start();
    try {
      const lead = await session.campaign(current, url);
      joined(session, lead);
      return lead;
    } catch (err) {
      await session.close();
      throw err;
    }
  };
}

/** How long a switchover waits for its target to acknowledge everything. */
const HANDOVER_MS = 30_000;

/**
 * Joins a started primary to its session: its position published, and a planned switchover
 * carried out: journal nothing more, wait until the target has acknowledged everything, give
 * the leader key up and step down (the target takes over at once). Returns a stopper.
 */
export function servePrimary(p: Primary, session: ClusterSession, url: string, log: Logger): () => void {
  session.position = primaryPosition(p, url);
  void session.publish();
  let busy = false;
  const timer = setInterval(() => {
    const to = session.lastView?.switchover?.to;
    if (busy || !to || to === session.nodeId || !session.leading) return;
    busy = true;
    void handOver(p, session, to, log).finally(() => {
      busy = false;
    });
  }, 100);
  timer.unref();
  return () => clearInterval(timer);
}

async function handOver(p: Primary, session: ClusterSession, to: string, log: Logger): Promise<void> {
  p.holdChanges();
  const seq = p.status().seq;
  log('switchover', { to, seq });
  const caughtUp = () => p.status().mirrors.some((m) => m.id === to && m.connected && m.ackedSeq >= seq);
  const deadline = Date.now() + HANDOVER_MS;
  while (!caughtUp()) {
    if (Date.now() > deadline || !session.leading) {
      log('switchover-failed', { to, seq, error: `${to} did not acknowledge seq ${seq} in time` });
      p.holdChanges(false);
      await session.requestSwitchover(null).catch(() => {});
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await session.resign();
  p.stepDown();
}

/**
 * `mimic switchover --to <node>`: asks the cluster's primary to hand over to `to` and waits
 * until `to` holds the leader key; the request is cleared either way.
 */
export async function switchover(
  session: ClusterSession,
  to: string,
  timeoutMs: number,
): Promise<ClusterView['leader']> {
  const view = await session.view();
  if (!view.leader)
    throw new AgentError(
      'ERR_NOT_LEADER',
      `cluster ${session.options.cluster} has no leader to hand over from`,
    );
  if (view.leader.node === to) return view.leader;
  const target = view.members.find((m) => m.id === to);
  if (target?.role !== 'mirror' || target.url === null)
    throw new AgentError(
      'ERR_INVALID_ARGUMENT',
      `switchover --to ${to}: not a mirror of cluster ${session.options.cluster} that can serve`,
    );
  await session.requestSwitchover(to);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = await session.view().catch(() => null);
      if (now?.leader?.node === to) return now.leader;
      if (Date.now() > deadline)
        throw new AgentError('ERR_TIMEOUT', `switchover to ${to}: not the leader after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await session.requestSwitchover(null).catch(() => {});
  }
}

/**
 * Joins a started mirror to a cluster: its position published, manual promotion through the
 * leader transaction, and automatic takeover when the leader is gone. Returns the session.
 */
export async function joinCluster(
  mirror: Mirror,
  options: ClusterOptions,
  listenUrl: string | null,
  log: Logger,
): Promise<ClusterSession> {
  const session = new ClusterSession(mirror.status().nodeId, options, log);
  session.position = () => {
    const s = mirror.status();
    return { role: 'mirror', seq: s.appliedSeq, term: s.epoch.term, url: listenUrl };
  };
  await session.start();
  if (listenUrl === null) return session; // cannot serve: follows, never takes over
  mirror.campaign = (current) => session.campaign(current, listenUrl);
  const elector = new Elector(session, (reason) => mirror.promote(reason), log);
  elector.onLeaderGone = () => mirror.dropPrimary();
  mirror.once('promoted', (primary: Primary) => {
    elector.stop();
    servePrimary(primary, session, listenUrl, log);
  });
  if (!session.options.nofailover) elector.start();
  return session;
}
