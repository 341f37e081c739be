/*
 * mirror/ holds a read-only copy of a primary's folder, kept current and durable:
 * - mirror.ts: Mirror, the node's lifecycle: dialing and choosing a primary, backoff,
 *   watching for a newer primary, status and control commands, promotion to primary;
 *   mirror-types.ts: its options and what it reports.
 * - connection.ts: one Connection per socket: handshake, the queue and its drain loop, and
 *   the dispatch of each message by type.
 * - follow-state.ts: what survives reconnects: epoch, applied sequence, checkpoints and acks,
 *   the failure bookkeeping that decides between replay and reconcile.
 * - reconciler.ts: catch-up by manifest; rejoin.ts: an old primary rejoining as a mirror.
 * - applier/: applies ops to the tree and lands them durably.
 *
 * A message flows: socket (PeerSocket decodes it) -> Connection queue (the socket pauses while
 * the queue is too far behind) -> dispatch by type (hello, auth, welcome, manifest, op, error)
 * -> Applier.apply -> FollowState.checkpoint (the files land in the background and the
 * sequence is recorded) -> ack to the primary once they have.
 *
 * Backoff: any failure closes the socket and dials again after a delay (50 ms doubling to 8 s,
 * each delay drawn from 80-120% of that), cycling through the configured primaries. The backoff
 * starts over only after a connection that made progress or stayed up RESET_BACKOFF_MS: one
 * refused at every replay must not reconnect 20 times a second. The same refusal of the same op
 * twice in a row stops the replay: the next connection reconciles by manifest instead.
 */
import { EventEmitter } from 'node:events';
import { mkdir, readdir, stat } from 'node:fs/promises';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { compareEpoch, type Epoch } from '@mimic/wire';
import type WebSocketClass from 'ws';
import { checkRate } from '../link/bandwidth.js';
import { type ProbeResult, probePeer } from '../link/peer-probe.js';
import { serveControl } from '../node/control-socket.js';
import { AgentError } from '../node/errors.js';
import { RESERVED_ROOT_NAMES } from '../node/excludes.js';
import { resolveFolderId } from '../node/folder-marker.js';
import type { Leadership } from '../node/leadership.js';
import { holdMemoryTrim } from '../node/memory-trim.js';
import { requireCjs } from '../node/require-cjs.js';
import { Store } from '../node/store.js';
import { Primary } from '../primary/primary.js';
import { Applier } from './applier/applier.js';
import { Connection } from './connection.js';
import { FollowState } from './follow-state.js';
import {
  type MirrorEvents,
  type MirrorOptions,
  type MirrorStatus,
  type PromoteReason,
  type ResolvedMirrorOptions,
  resolveOptions,
} from './mirror-types.js';
import { lastWriteOf, promotedOptions } from './rejoin.js';

const WebSocket: typeof WebSocketClass = requireCjs('ws');

const NEWER_PRIMARY_PROBE_MS = 3000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 8000;
/** A connection that stayed up this long was healthy: the next failure dials again at once. */
const RESET_BACKOFF_MS = 10_000;

/** A read-only copy of a primary's folder, kept current and durable. */
export class Mirror extends EventEmitter<MirrorEvents> {
  readonly options: ResolvedMirrorOptions;
  readonly #s: FollowState;
  /** The current connection, or the last one until the next dial replaces it. */
  #conn: Connection | null = null;
  #url: string | null = null;
  #closed = false;
  #attempt = 0;
  #reconnect: NodeJS.Timeout | null = null;
  #control: Server | null = null;
  #promoting = false;
  #probeTimer: NodeJS.Timeout | null = null;
  readonly #releaseTrim = holdMemoryTrim();

  constructor(options: MirrorOptions) {
    super();
    this.options = resolveOptions(options);
    this.#s = new FollowState(this.options.root, this.options.log, this);
    this.#s.counters = this.options.counters;
    this.#s.compress = this.options.compress;
    this.#s.receive.setRate(this.options.bwlimit);
  }

  async start(): Promise<void> {
    const { root, stateDir } = this.options;
    const s = this.#s;
    const st = await stat(root).catch(() => null);
    if (!st?.isDirectory()) throw new AgentError('ERR_NO_ROOT', `${root}: no such folder`);
    await mkdir(stateDir, { recursive: true });
    s.storeWrittenAt = await lastWriteOf(join(stateDir, 'mimic.db'));
    s.store = new Store(join(stateDir, 'mimic.db'));
    try {
      s.folderId = resolveFolderId({
        root,
        stateId: s.store.folderId(),
        init: false,
        role: 'mirror',
      });
    } catch (err) {
      s.store.close();
      throw err;
    }
    if (s.folderId) s.store.setFolderId(s.folderId);
    s.nodeId = s.store.nodeId();
    // A former primary rejoining as a mirror has applied everything its own journal holds.
    s.appliedSeq = s.store.appliedSeq() ?? s.store.lastSeq();
    s.lastAcked = s.appliedSeq;
    s.epoch = s.store.epoch();
    s.store.setRole('mirror');
    if (s.store.unrecorded()) {
      // It stopped after changing its tree past the recorded sequence: a replay of a rename
      // onto a name that got new content since would move the wrong file. Compare instead.
      s.reconcileNext();
      this.options.log('unclean-stop', { appliedSeq: s.appliedSeq, action: 'reconcile by manifest' });
    }
    const diverged = () => join(stateDir, 'diverged', String(s.epoch.term));
    s.applier = new Applier(root, s.store, join(stateDir, 'tmp'), diverged, this.options.log);
    s.applier.beforeTreeChange = () => s.noteUnrecorded();
    s.applier.meta.keep(this.options.keep);
    await s.applier.init();
    s.applier.preserved = await countFiles(join(stateDir, 'diverged'));
    this.#control = await serveControl(stateDir, (req) => {
      if (req.cmd === 'status') return this.status();
      if (req.cmd === 'promote') return this.promote().then((p) => p.status());
      throw new AgentError('ERR_BAD_REQUEST', `unknown command ${req.cmd}`);
    });
    void this.#dial();
    if (this.options.primaries.length > 1) {
      this.#probeTimer = setInterval(() => void this.#watchForNewer(), NEWER_PRIMARY_PROBE_MS);
      this.#probeTimer.unref();
    }
  }

  status(): MirrorStatus {
    const s = this.#s;
    return {
      role: 'mirror',
      nodeId: s.nodeId,
      epoch: s.epoch,
      root: this.options.root,
      following: this.#url,
      connected: this.#conn?.up ?? false,
      appliedSeq: s.appliedSeq,
      files: s.applier?.manifest.size ?? 0,
      bytesReceived: s.bytesReceived,
      opsReceived: this.options.counters.opsReceived,
      lagOps: Math.max(0, s.received.last - s.appliedSeq),
      lagSeconds: Math.round(s.received.ageAfter(s.appliedSeq) * 1000) / 1000,
      progress: s.progress.view(),
      codec: this.#conn?.up ? this.#conn.socket.codec : null,
      bandwidth: { receive: s.receive.rate },
      diverged: s.applier?.preserved ?? 0,
      ...{ folderId: s.folderId, lastError: s.lastError, refused: s.refused },
      notKept: s.applier?.meta.notKept ?? [],
      ...(this.statusExtra ? this.statusExtra() : {}),
    };
  }

  /** The answering node with the highest epoch, never below the one followed now; null if none answers. */
  async #choose(): Promise<ProbeResult | null> {
    const s = this.#s;
    const results = await Promise.all(
      this.options.primaries.map((url) =>
        probePeer(url, s.nodeId, (nonce) => s.hello(nonce), {
          token: this.options.token,
          ...(this.options.tlsCa ? { ca: this.options.tlsCa } : {}),
        }),
      ),
    );
    let best: ProbeResult | null = null;
    for (const r of results) {
      if (r?.hello.role !== 'primary' || compareEpoch(r.hello.epoch, s.epoch) < 0) continue;
      if (s.folderId && r.hello.folder !== s.folderId) continue; // another folder's primary
      if (!best || compareEpoch(r.hello.epoch, best.hello.epoch) > 0) best = r;
    }
    return best;
  }

  async #dial(): Promise<void> {
    if (this.#closed || this.#promoting) return;
    const best = this.options.primaries.length > 1 ? await this.#choose() : null;
    if (this.#closed || this.#promoting) return;
    const url = best?.url ?? this.options.primaries[0]!;
    this.#url = url;
    this.#s.fresh = await this.#isFresh();
    if (this.#closed || this.#promoting) return;
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
      handshakeTimeout: 10_000,
      ...(this.options.tlsCa ? { ca: this.options.tlsCa } : {}),
    });
    let opened = false;
    const conn = new Connection(this.#s, url, ws, this.options.token, (reason) =>
      this.#onClose(conn, opened ? reason : `cannot reach ${url}: ${reason}`),
    );
    this.#conn = conn;
    ws.on('error', (err) => {
      this.#s.lastError = `${url}: ${err.message}`;
    });
    ws.on('open', () => {
      opened = true; // the primary speaks first; our hello answers its hello
      const timer = setTimeout(() => {
        if (conn.handshaking) conn.close(1008, 'ERR_HANDSHAKE_TIMEOUT: no hello, proof and welcome in time');
      }, HANDSHAKE_TIMEOUT_MS);
      timer.unref();
    });
  }

  /** Nothing applied, nothing recorded, and nothing in the folder but mimic's own. */
  async #isFresh(): Promise<boolean> {
    const s = this.#s;
    if (s.appliedSeq !== 0 || s.mustReconcile || s.applier.manifest.size > 0) return false;
    const names = await readdir(this.options.root).catch(() => null);
    return names?.every((n) => RESERVED_ROOT_NAMES.includes(n)) ?? false;
  }

  /** While following, look for a newer primary among the other configured nodes. */
  async #watchForNewer(): Promise<void> {
    if (this.#conn?.state !== 'streaming' || this.options.primaries.length < 2) return;
    const best = await this.#choose();
    const conn = this.#conn;
    if (
      best &&
      conn?.current &&
      best.url !== this.#url &&
      compareEpoch(best.hello.epoch, this.#s.epoch) > 0
    ) {
      this.options.log('newer-primary', { primary: best.url, epoch: best.hello.epoch });
      conn.close(1000, `following the newer primary at ${best.url}`);
    }
  }

  #onClose(conn: Connection, reason: string): void {
    const s = this.#s;
    const upSince = conn.upSince;
    if (upSince !== null) {
      this.options.log('disconnected', { primary: this.#url, reason });
      this.emit('disconnected', reason);
    } else {
      s.lastError = reason;
    }
    if (this.#closed) return;
    // A healthy connection that ended starts the backoff over; a failing one doubles it.
    const progressed = s.takeProgress();
    const healthy = upSince !== null && (progressed || Date.now() - upSince >= RESET_BACKOFF_MS);
    this.#attempt = healthy ? 1 : this.#attempt + 1;
    // Soon at first: a mirror started with its primary (or just after it restarted) would
    // otherwise wait a quarter of a second for a port that opens a moment later.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(12, this.#attempt - 1));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    if (this.#attempt % 10 === 1 || this.#attempt === 2)
      this.options.log('retrying', { primary: this.#url, reason, delayMs: delay, attempt: this.#attempt });
    // The next connection starts once this one's drain loop has ended: one loop applies at a time.
    this.#reconnect = setTimeout(() => {
      void conn.idle().then(() => this.#dial());
    }, delay);
  }

  /** A new limit on what is read from the primary, in wire bytes per second (null: none), at once. */
  setBandwidth(limits: { receive?: number | null }): void {
    if (limits.receive !== undefined) this.#s.receive.setRate(checkRate(limits.receive, 'receive'));
  }

  /** Drops the primary followed now (its leader key is gone in etcd); the next one is dialed. */
  dropPrimary(): void {
    this.#conn?.close(4001, 'ERR_FENCED: the primary no longer holds the leader key');
  }

  /**
   * Becomes the primary: stops following, takes the next epoch (a higher term, this node's id,
   * or etcd's), records durably where it forked, and serves on `listen`; resolves once durable.
   */
  /** More to show in status (the cluster); and how a promotion takes the cluster's leader key. */
  statusExtra: (() => Record<string, unknown>) | null = null;
  campaign?: (current: Epoch) => Promise<Leadership>;

  async promote(reason: PromoteReason = 'manual'): Promise<Primary> {
    const listen = this.options.listen;
    if (!listen)
      throw new AgentError('ERR_NO_LISTEN', 'this mirror was started without --listen; it cannot serve');
    if (this.#promoting || this.#closed)
      throw new AgentError('ERR_NOT_MIRROR', 'this node is not a running mirror');
    this.#promoting = true;
    const s = this.#s;
    const old = s.epoch;
    // With a cluster, the term is etcd's, taken with the leader key before anything changes here.
    const lead = await this.campaign?.(old).catch((err: Error) => {
      this.#promoting = false;
      throw err;
    });
    if (this.#reconnect) clearTimeout(this.#reconnect);
    this.#conn?.close(1001, 'promoted');
    await this.#conn?.idle();
    await s.applier.abandon();
    await s.applier.commit();
    const epoch: Epoch = { term: lead?.term ?? old.term + 1, node: s.nodeId };
    s.store.recordPromotion(s.appliedSeq, old, epoch);
    this.options.log('promoting', { from: old, to: epoch, forkSeq: s.appliedSeq });
    await this.close();
    const primary = new Primary(promotedOptions(this.options, listen, lead));
    await primary.start();
    this.options.log('promoted', { epoch, reason, listen: `${listen.host}:${primary.address.port}` });
    this.emit('promoted', primary, reason);
    return primary;
  }

  async close(): Promise<void> {
    const s = this.#s;
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    this.#releaseTrim();
    this.#closed = true;
    if (this.#reconnect) clearTimeout(this.#reconnect);
    this.#conn?.close(1001, 'mirror shutting down');
    this.#control?.close();
    await this.#conn?.idle();
    await s.applier?.abandon();
    // A clean stop records what it applied, so that the next start resumes without a compare;
    // a reconcile cut short is not a sequence one can resume from.
    const clean = !s.reconciling && !s.mustReconcile && s.applier !== undefined;
    const record = clean ? () => s.store.setAppliedSeq(s.appliedSeq) : undefined;
    await s.applier?.commit(record).catch(() => {});
    s.applier?.close();
    s.store?.close();
  }
}

/** Files below `dir` (0 when it does not exist). */
async function countFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => !e.isDirectory()).length;
}
