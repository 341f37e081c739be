/*
 * A mirror's side of automatic failover. While a leader key exists, it remembers the last
 * position the primary published. Once the key has been gone for SETTLE_MS (every member has
 * published its position since), the mirrors that may take over compare positions: the most
 * caught-up one (then priority, then node id; see chooseSuccessor) runs the leader transaction
 * and is promoted; the others stand aside and follow it (they find it as any newer primary).
 * etcd's own election API is not used: it elects whoever asks first, not the most caught-up.
 * An etcd that does not answer promotes nobody.
 */
import type { Logger } from '../node/log.js';
import { chooseSuccessor } from './cluster-keys.js';
import type { ClusterSession } from './cluster-session.js';

/** How often the cluster is read. */
const POLL_MS = 250;
/** How long the leader key must have been gone before anyone takes over. */
const SETTLE_MS = 1000;

export class Elector {
  readonly #session: ClusterSession;
  readonly #promote: (reason: 'failover' | 'switchover') => Promise<unknown>;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #goneSince: number | null = null;
  #lastPrimarySeq = 0;
  #busy = false;
  #done = false;
  /** Called once each time the leader key goes: a mirror drops the primary it follows. */
  onLeaderGone: () => void = () => {};

  constructor(
    session: ClusterSession,
    promote: (reason: 'failover' | 'switchover') => Promise<unknown>,
    log: Logger,
  ) {
    this.#session = session;
    this.#promote = promote;
    this.#log = log;
  }

  start(): void {
    this.#timer = setInterval(() => void this.#poll(), POLL_MS);
    this.#timer.unref();
  }

  stop(): void {
    this.#done = true;
    if (this.#timer) clearInterval(this.#timer);
  }

  async #poll(): Promise<void> {
    if (this.#busy || this.#done) return;
    this.#busy = true;
    try {
      const view = await this.#session.view().catch(() => null);
      if (!view) return; // etcd unreachable: follow on, promote nobody
      if (view.leader) {
        this.#goneSince = null;
        const p = view.members.find((m) => m.id === view.leader!.node);
        if (p) this.#lastPrimarySeq = Math.max(this.#lastPrimarySeq, p.seq);
        return;
      }
      if (view.switchover) {
        // Planned: the old primary handed over once the target had everything; only it goes.
        if (view.switchover.to !== this.#session.nodeId) return;
        this.#log('taking-over', { reason: 'switchover' });
        await this.#promote('switchover').then(
          () => this.stop(),
          (err: Error) => this.#log('take-over-failed', { error: err.message }),
        );
        return;
      }
      const now = Date.now();
      if (this.#goneSince === null) this.onLeaderGone();
      this.#goneSince ??= now;
      if (now - this.#goneSince < SETTLE_MS) return;
      const { maxLag } = this.#session.options;
      const best = chooseSuccessor(view.members, this.#lastPrimarySeq, maxLag);
      if (best?.id !== this.#session.nodeId) return;
      this.#log('taking-over', { reason: 'failover', seq: best.seq, lastPrimarySeq: this.#lastPrimarySeq });
      await this.#promote('failover').then(
        () => this.stop(),
        (err: Error) => this.#log('take-over-failed', { error: err.message }),
      );
    } finally {
      this.#busy = false;
    }
  }
}
