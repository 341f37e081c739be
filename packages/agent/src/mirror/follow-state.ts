import type { EventEmitter } from 'node:events';
import { type Epoch, type HelloMessage, type Message, makeHello } from '@mimic/wire';
import { TokenBucket } from '../link/bandwidth.js';
import { helloCompression } from '../link/compression.js';
import type { NodeCounters } from '../node/counters.js';
import { codeOf } from '../node/errors.js';
import { writeFolderMarker } from '../node/folder-marker.js';
import type { Logger } from '../node/log.js';
import { SeqClock } from '../node/seq-clock.js';
import type { Store } from '../node/store.js';
import { NO_EPOCH } from '../node/store-schema.js';
import type { Applier } from './applier/applier.js';
import type { MirrorEvents, MirrorStatus } from './mirror-types.js';
import { SyncProgress } from './sync-progress.js';

/** Refusals by the mirror or its primary that an operator must act on (logged as `refused`). */
export const REFUSALS = new Set([
  'ERR_FOLDER_ID',
  'ERR_STALE_PRIMARY',
  'ERR_AUTH',
  'ERR_ROLE',
  'ERR_UNSAFE_PATH',
]);

/** What each refusal code tells an operator to do (mimic status shows it). */
const REFUSAL_HINTS: Record<string, string> = {
  ERR_FOLDER_ID:
    'the primary serves another folder (was its folder recreated, or its disk not mounted?): fix the primary; this mirror keeps its files and retries. To follow the new folder instead, start this mirror on an empty folder and state',
  ERR_STALE_PRIMARY: 'that node was superseded by a promotion: point this mirror at the current primary',
  ERR_AUTH: 'the token files differ: give both nodes the same --token-file',
  ERR_ROLE: 'that node is not a primary: check --primary',
  ERR_UNSAFE_PATH:
    'an op would write through a symlink in this mirror: the mirror reconciles by manifest when the replay meets it twice',
};

/** Codes of a batch that did not land: what it held is found again by comparing manifests. */
const RECONCILE_AFTER = ['ERR_BASIS_MISMATCH', 'ERR_BAD_DELTA', 'ERR_LAND', undefined];

/** The connection a checkpoint was taken on: where its ack goes, and what a failed landing ends. */
export interface CheckpointTarget {
  /** Still the mirror's connection and not failed: only then is the ack sent. */
  readonly current: boolean;
  send(msg: Message): Promise<void>;
  close(code: number, reason: string): void;
}

/** The op a connection was applying when it failed. */
export interface Applying {
  seq: number;
  path: string;
}

/**
 * What a mirror knows across connections: its store and applier, the epoch and sequence it
 * follows, and the failure bookkeeping that decides whether the next connection replays or
 * reconciles by manifest. Connections come and go; all of this survives them.
 *
 * Failure bookkeeping: `failedAt` is the sequence of the op whose failure set `forceReconcile`
 * or `lastFailure`. Batches land in the background, so one may finish after a later op failed:
 * a landing that records less than `failedAt` must not clear what that failure set. The same
 * op refused the same way on two connections in a row logs `replay-refused` once and forces a
 * reconcile.
 */
export class FollowState {
  readonly root: string;
  readonly log: Logger;
  readonly events: EventEmitter<MirrorEvents>;
  store!: Store;
  applier!: Applier;
  nodeId = '';
  /** The folder this mirror holds (null: none yet; it adopts its first primary's). */
  folderId: string | null = null;
  epoch: Epoch = NO_EPOCH;
  appliedSeq = 0;
  lastAcked = 0;
  /** When the last checkpoint was taken. */
  ackAt = 0;
  bytesReceived = 0;
  /** The node's counters (set by the Mirror that owns this state). */
  counters!: NodeCounters;
  /** When each seq arrived, until applied: how far behind its primary this mirror is. */
  readonly received = new SeqClock();
  /** An initial sync, reconcile or long catch-up under way. */
  readonly progress = new SyncProgress();
  /** What the last dial found (see Mirror#isFresh): told to the primary in our hello. */
  fresh = false;
  /** Our hello asks for compression (`--compress`). */
  compress = false;
  /** What reading from the primary pays into (`--bwlimit`; no limit by default). */
  readonly receive = new TokenBucket(null);
  /** The next connection compares manifests instead of replaying (see `mustReconcile`). */
  #forceReconcile = false;
  /** The refusal of the last failed connection (see `failed`). */
  #lastFailure: { seq: number; code: string } | null = null;
  /**
   * The sequence of the op whose failure set #forceReconcile or #lastFailure: a landing that
   * records less than it finished before that failure and must not clear what it set.
   */
  #failedAt = 0;
  /** The current connection applied something new (the backoff starts over). */
  #progressed = false;
  /** A background landing's failure, already logged: the op that next meets it logs nothing. */
  #landingFailure: Error | null = null;
  /** The tree holds changes past the recorded sequence, and the store says so. */
  unrecorded = false;
  /** A reconcile began and has not finished (its tree is between two sequences). */
  reconciling = false;
  lastError: string | null = null;
  refused: MirrorStatus['refused'] = null;
  /** When the database was last written before this start (by this node as a primary, maybe). */
  storeWrittenAt: number | null = null;

  constructor(root: string, log: Logger, events: EventEmitter<MirrorEvents>) {
    this.root = root;
    this.log = log;
    this.events = events;
  }

  /** The next connection reconciles by manifest instead of replaying from appliedSeq. */
  get mustReconcile(): boolean {
    return this.#forceReconcile;
  }

  /** The tree cannot be trusted to match appliedSeq (an unclean stop): compare it next time. */
  reconcileNext(): void {
    this.#forceReconcile = true;
  }

  /** Whether the connection applied something new since the last call (then resets it). */
  takeProgress(): boolean {
    const progressed = this.#progressed;
    this.#progressed = false;
    return progressed;
  }

  /** The failure the next connection is judged by: the op refused and where bookkeeping stands. */
  get failure(): { seq: number; code: string; failedAt: number } | null {
    return this.#lastFailure ? { ...this.#lastFailure, failedAt: this.#failedAt } : null;
  }

  /** This mirror's hello as of now, around the connection's nonce, answering the primary's `peer`. */
  hello(nonce: Uint8Array, peer: HelloMessage | null = null): HelloMessage {
    return makeHello({
      nodeId: this.nodeId,
      role: 'mirror',
      epoch: this.epoch,
      appliedSeq: this.#forceReconcile ? 0 : this.appliedSeq,
      fresh: this.fresh,
      nonce,
      ...(this.folderId ? { folder: this.folderId } : {}),
      ...helloCompression(this.compress, peer),
    });
  }

  /** Before the tree changes past the recorded sequence: once per checkpoint (see unrecorded). */
  noteUnrecorded(): void {
    if (this.unrecorded) return;
    this.store.markUnrecorded();
    this.unrecorded = true;
  }

  /** A new mirror takes the identity of the first folder it follows: state, then marker. */
  adoptFolder(id: string, primary: string): void {
    this.store.setFolderId(id);
    writeFolderMarker(this.root, id);
    this.folderId = id;
    this.log('folder-adopted', { folderId: id, primary });
  }

  /** A connection refused for a reason an operator must see: one line, and in status. */
  refuse(code: string, message: string, primary: string): void {
    const hint = REFUSAL_HINTS[code] ?? '';
    if (this.refused?.code !== code || this.refused.message !== message)
      this.refused = { code, message, hint, since: new Date().toISOString() };
    this.log('refused', { primary, code, error: message, ...(hint ? { hint } : {}) });
  }

  /**
   * Makes everything applied durable, records the sequence and acknowledges it on `conn`. The
   * files land in the background while the next ones are rebuilt; the ack goes once they have.
   */
  async checkpoint(conn: CheckpointTarget): Promise<void> {
    const seq = this.appliedSeq;
    const record =
      seq === this.lastAcked
        ? undefined
        : () => {
            this.store.setAppliedSeq(seq);
            this.unrecorded = false;
          };
    if (record) this.lastAcked = seq;
    this.ackAt = Date.now();
    await this.applier.commitSoon(record, (err) => {
      if (err) {
        this.#forceReconcile = true;
        this.lastError = err.message;
        const code = codeOf(err) ?? 'ERR_APPLY';
        this.log('apply-failed', { error: err.message, code });
        this.#landingFailure = err;
        this.#failedAt = Math.max(this.#failedAt, seq);
        conn.close(1011, `${code}: ${err.message}`);
        return;
      }
      if (!record) return;
      // Batches land in the background: this one may complete after a later op failed.
      if (seq >= this.#failedAt) {
        this.#forceReconcile = false;
        this.#progressed = true;
        this.#lastFailure = null;
      }
      if (conn.current) void conn.send({ type: 'ack', epoch: this.epoch, seq });
      this.events.emit('applied', seq);
    });
  }

  /**
   * Books a connection's failure: logs it, drops what was not landed, and decides whether the
   * next connection replays or reconciles. Returns the code the connection closes with.
   */
  async failed(err: unknown, applying: Applying | null, primary: string): Promise<string> {
    const e = err as { code?: string; message: string; path?: string };
    this.lastError = e.message;
    const code = e.code ?? 'ERR_APPLY';
    if (REFUSALS.has(code)) this.refuse(code, e.message, primary);
    // A batch that failed to land was logged as it failed; the next op only meets it again.
    else if (err !== this.#landingFailure) this.log('apply-failed', { error: e.message, code });
    this.#landingFailure = null;
    await this.applier.abandon();
    if (RECONCILE_AFTER.includes(e.code)) this.#forceReconcile = true;
    // The same op refused the same way twice: replaying it again would only fail again.
    const last = this.#lastFailure;
    if (applying && last && last.seq === applying.seq && last.code === code && !this.#forceReconcile) {
      this.#forceReconcile = true;
      this.log('replay-refused', {
        seq: applying.seq,
        path: e.path ?? applying.path,
        code,
        action: 'reconcile by manifest',
      });
    }
    this.#lastFailure = applying ? { seq: applying.seq, code } : null;
    this.#failedAt = applying?.seq ?? this.appliedSeq + 1;
    return code;
  }
}
