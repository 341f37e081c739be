/*
 * One node's session with etcd: its lease (kept alive by hand, so that every keepalive's send
 * time is known: see lease-clock.ts), its member key (position, URL, priority), the leader key
 * when it leads, and reads of the cluster for the elector and `mimic status`. Every call to
 * etcd has a deadline; an etcd that does not answer is "unreachable", never a hang.
 */
import type { Epoch } from '@mimic/wire';
import type { Etcd3, IOptions, Lease } from 'etcd3';
import { AgentError } from '../node/errors.js';
import type { Leadership } from '../node/leadership.js';
import type { Logger } from '../node/log.js';
import { requireCjs } from '../node/require-cjs.js';
import {
  type ClusterKeys,
  clusterKeys,
  type LeaderValue,
  type MemberValue,
  parseLeader,
  parseMember,
  parseSwitchover,
  parseTerm,
} from './cluster-keys.js';
import { LeaseClock } from './lease-clock.js';

const { Etcd3: Client } = requireCjs('etcd3') as typeof import('etcd3');
const cockatiel = requireCjs('cockatiel') as typeof import('cockatiel');

/** etcd counts as reachable while some call was answered this recently. */
const REACHABLE_MS = 3000;
/** Deadline of one call to etcd. */
const CALL_MS = 1500;
/** How often a node's member key is written (its position for the elector). */
export const PUBLISH_MS = 500;

export interface ClusterOptions {
  /** etcd client URLs. */
  endpoints: readonly string[];
  cluster: string;
  /** Lease TTL in seconds (default 10). */
  ttl?: number;
  /** Never take over (a member that only follows). */
  nofailover?: boolean;
  /** Preferred among equally caught-up mirrors (higher wins; default 0). */
  priority?: number;
  /** A mirror more than this many ops behind the primary's last published position may not take over. */
  maxLag?: number;
  /** etcd credentials and CA, when etcd asks for them. */
  auth?: { username: string; password: string };
  ca?: Buffer;
}

/** The cluster as one read of etcd found it. */
export interface ClusterView {
  leader: LeaderValue | null;
  term: number;
  members: MemberValue[];
  /** An operator's planned switchover, while it is under way. */
  switchover: { to: string } | null;
}

export class ClusterSession {
  readonly keys: ClusterKeys;
  readonly options: Required<Pick<ClusterOptions, 'ttl' | 'nofailover' | 'priority' | 'maxLag'>> &
    ClusterOptions;
  readonly #client: Etcd3;
  readonly #log: Logger;
  readonly #nodeId: string;
  #lease: Lease | null = null;
  #leaseId = '';
  readonly clock: LeaseClock;
  #timer: NodeJS.Timeout | null = null;
  #publishTimer: NodeJS.Timeout | null = null;
  #closed = false;
  /** The leader key is ours (until lost or released). */
  #leading: LeaderValue | null = null;
  /** A leader key given up but not yet deleted (etcd did not answer). */
  #toRelease: LeaderValue | null = null;
  /** What the member key says, refreshed by `position`. */
  position: () => Omit<MemberValue, 'id' | 'priority' | 'nofailover'>;
  #answeredAt = Number.NEGATIVE_INFINITY;

  /** etcd answered a call in the last few seconds (one member of several down is no outage). */
  get reachable(): boolean {
    return Date.now() - this.#answeredAt < REACHABLE_MS;
  }
  /** The last view read, for status. */
  lastView: ClusterView | null = null;

  constructor(nodeId: string, options: ClusterOptions, log: Logger) {
    this.#nodeId = nodeId;
    this.options = { ttl: 10, nofailover: false, priority: 0, maxLag: 1000, ...options };
    if (!Number.isInteger(this.options.ttl) || this.options.ttl < 2)
      throw new AgentError(
        'ERR_INVALID_ARGUMENT',
        `--etcd-ttl ${this.options.ttl}: expected whole seconds, at least 2`,
      );
    this.keys = clusterKeys(options.cluster);
    this.#log = log;
    this.clock = new LeaseClock(this.options.ttl);
    this.position = () => ({ role: 'mirror', seq: 0, term: 0, url: null });
    const opts: IOptions = {
      hosts: [...options.endpoints],
      dialTimeout: CALL_MS,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_MS }),
      // A call that fails is tried on the other members; a member that refused is left alone
      // for a second. With one endpoint, no breaker: after an etcd restart the next keepalive
      // must go out at once.
      faultHandling: {
        host: () =>
          options.endpoints.length > 1
            ? cockatiel.circuitBreaker(cockatiel.handleAll, {
                halfOpenAfter: 1000,
                breaker: new cockatiel.ConsecutiveBreaker(1),
              })
            : cockatiel.noop,
        global: cockatiel.retry(cockatiel.handleAll, { maxAttempts: options.endpoints.length }),
      },
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.ca ? { credentials: { rootCertificate: options.ca } } : {}),
    };
    this.#client = new Client(opts);
  }

  get nodeId(): string {
    return this.#nodeId;
  }

  get leading(): boolean {
    return this.#leading !== null && this.clock.valid();
  }

  /** Grants the lease and starts keeping it alive and publishing this node's member key. */
  async start(): Promise<void> {
    // etcd down: a mirror still starts and follows; the lease is granted once etcd answers.
    await this.#grant().catch((err: Error) => this.#log('etcd-unreachable', { error: err.message }));
    this.#tick();
    this.#publishTimer = setInterval(() => void this.publish(), PUBLISH_MS);
    this.#publishTimer.unref();
  }

  async #grant(): Promise<void> {
    const lease = this.#client.lease(this.options.ttl, { autoKeepAlive: false });
    const sentAt = Date.now();
    this.#leaseId = await this.#call(() => lease.grant());
    this.clock.answered(sentAt, this.options.ttl);
    this.#lease = lease;
    this.#answeredAt = Date.now();
  }

  /** One keepalive now, and the next one scheduled. */
  #tick(): void {
    if (this.#closed) return;
    void this.#keepalive().finally(() => {
      if (this.#closed) return;
      this.#timer = setTimeout(() => this.#tick(), this.clock.intervalMs);
      this.#timer.unref();
    });
  }

  async #keepalive(): Promise<void> {
    const lease = this.#lease;
    const sentAt = Date.now();
    try {
      if (!lease) return await this.#grant();
      const r = await lease.keepaliveOnce();
      this.#answeredAt = Date.now();
      const ttl = Number(r.TTL);
      this.clock.answered(sentAt, ttl);
      if (ttl <= 0) this.#leaseExpired();
      if (this.#toRelease) void this.#release(this.#toRelease);
    } catch (err) {
      if ((err as Error).name === 'EtcdLeaseInvalidError') this.#leaseExpired();
      else
        this.#log('etcd-unreachable', {
          error: (err as Error).message,
          leaseLeftMs: Math.round(this.clock.leftMs),
        });
    }
  }

  /** etcd dropped the lease: the leader key went with it, for good. A new lease is granted. */
  #leaseExpired(): void {
    this.clock.lost();
    if (this.#leading) this.#log('lease-lost', { term: this.#leading.term });
    this.#leading = null;
    this.#lease = null;
  }

  /** Writes this node's member key (bound to its lease). */
  async publish(): Promise<void> {
    if (this.#closed || !this.#lease) return;
    const value: MemberValue = {
      id: this.#nodeId,
      ...this.position(),
      priority: this.options.priority,
      nofailover: this.options.nofailover,
    };
    await this.#call(() =>
      this.#lease!.put(this.keys.member(this.#nodeId)).value(JSON.stringify(value)).exec(),
    ).catch(() => {});
    await this.view().catch(() => {}); // for status
  }

  /** Leader, term counter and members as etcd has them now. */
  async view(): Promise<ClusterView> {
    const { keys } = this;
    const [leaderRaw, termRaw, membersRaw, switchRaw] = await this.#call(() =>
      Promise.all([
        this.#client.get(keys.leader).string(),
        this.#client.get(keys.term).string(),
        this.#client.getAll().prefix(keys.members).strings(),
        this.#client.get(keys.switchover).string(),
      ]),
    );
    const members: MemberValue[] = [];
    for (const [key, raw] of Object.entries(membersRaw)) {
      try {
        members.push(parseMember(key, raw));
      } catch (err) {
        this.#log('cluster-value-refused', { key, error: (err as Error).message });
      }
    }
    const view = {
      leader: leaderRaw === null ? null : parseLeader(keys.leader, leaderRaw),
      term: parseTerm(keys.term, termRaw),
      members,
      switchover: switchRaw === null ? null : parseSwitchover(keys.switchover, switchRaw),
    };
    this.lastView = view;
    return view;
  }

  /**
   * Takes the leader key for this node at `url`, in one transaction with the term counter: only
   * if no leader key exists and the counter is still what was read. The term is above both
   * the counter and `current` (the epoch this node last knew, from earlier manual promotions).
   */
  async campaign(current: Epoch, url: string): Promise<Leadership> {
    if (!this.#lease || !this.clock.valid())
      throw new AgentError('ERR_ETCD', 'etcd: no lease held (etcd unreachable?): cannot take the leader key');
    const { keys } = this;
    const seen = await this.view();
    if (seen.leader)
      throw new AgentError(
        'ERR_NOT_LEADER',
        `cluster ${this.options.cluster} has a leader: ${seen.leader.node} at term ${seen.leader.term} (${seen.leader.url})`,
      );
    const term = Math.max(seen.term, current.term) + 1;
    const leader: LeaderValue = { node: this.#nodeId, term, url };
    const counter =
      seen.term === 0
        ? this.#client.if(keys.term, 'Create', '==', 0)
        : this.#client.if(keys.term, 'Value', '==', String(seen.term));
    const result = await this.#call(() =>
      counter
        .and(keys.leader, 'Create', '==', 0)
        .then(
          this.#client.put(keys.leader).value(JSON.stringify(leader)).lease(this.#leaseId),
          this.#client.put(keys.term).value(String(term)),
        )
        .commit(),
    );
    if (!result.succeeded)
      throw new AgentError(
        'ERR_NOT_LEADER',
        `cluster ${this.options.cluster}: another node took the leader key first`,
      );
    this.#leading = leader;
    this.#log('leader', { term, url });
    return {
      term,
      // Once invalid, for good: the primary fences itself and gives the key up.
      valid: () => {
        if (this.#leading === leader && this.clock.valid()) return true;
        if (this.#leading === leader) void this.#release(leader);
        return false;
      },
      release: () => this.#release(leader),
    };
  }

  /**
   * Deletes the leader key if it is still this node's. Until etcd has answered, every answered
   * keepalive tries again: a fenced primary must never keep the key (no one else could take over).
   */
  async #release(leader: LeaderValue): Promise<void> {
    if (this.#leading === leader) this.#leading = null;
    this.#toRelease = leader;
    await this.#call(() =>
      this.#client
        .if(this.keys.leader, 'Value', '==', JSON.stringify(leader))
        .then(this.#client.delete().key(this.keys.leader))
        .commit(),
    ).then(
      () => {
        if (this.#toRelease === leader) this.#toRelease = null;
        this.#log('leader-released', { term: leader.term });
      },
      () => {},
    );
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new AgentError('ERR_ETCD', `etcd: no answer in ${CALL_MS} ms`)),
            CALL_MS,
          );
        }),
      ]);
      this.#answeredAt = Date.now();
      return r;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Asks for a planned switchover to node `to` (the operator's key), or clears the request. */
  async requestSwitchover(to: string | null): Promise<void> {
    const key = this.keys.switchover;
    if (to === null) await this.#call(() => this.#client.delete().key(key).exec());
    else await this.#call(() => this.#client.put(key).value(JSON.stringify({ to })).exec());
  }

  /** Gives the leader key up now, if this node holds it (an --on-promote hook failed, a switchover). */
  async resign(): Promise<void> {
    if (this.#leading) await this.#release(this.#leading);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#publishTimer) clearInterval(this.#publishTimer);
    if (this.#leading) await this.#release(this.#leading);
    await this.#lease?.revoke().catch(() => {});
    this.#client.close();
  }
}
