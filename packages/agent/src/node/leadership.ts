/*
 * What a primary needs of a consensus service that elects it (see cluster/): the term it was
 * given, and whether it may still act as the primary at this very moment. The answer is timed
 * from when the last lease keepalive was sent, not from when its answer came or a timer fired:
 * a primary whose event loop stalled past its lease finds out at its next send, before it.
 */
import type { Epoch } from '@mimic/wire';

export interface Leadership {
  /** The term this node holds the leader key for. */
  readonly term: number;
  /** Whether this node may still write now (its lease cannot have expired in etcd yet). */
  valid(): boolean;
  /** Gives the leader key up (a clean stop, or a switchover). */
  release(): Promise<void>;
}

/** Takes the leadership for node `nodeId` serving at `url`, above the epoch it last served in. */
export type LeadershipSource = (nodeId: string, current: Epoch, url: string) => Promise<Leadership>;
