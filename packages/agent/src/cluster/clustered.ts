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

/** Joins a started primary's session to its status; resolves nothing, returns the session's closer. */
export function servePrimary(p: Primary, session: ClusterSession, url: string): void {
  session.position = primaryPosition(p, url);
  void session.publish();
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
  const elector = new Elector(session, () => mirror.promote('failover'), log);
  mirror.once('promoted', (primary: Primary) => {
    elector.stop();
    session.position = primaryPosition(primary, listenUrl);
  });
  if (!session.options.nofailover) elector.start();
  return session;
}
