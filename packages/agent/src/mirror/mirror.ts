import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, readdir, stat } from 'node:fs/promises';
import type { Server } from 'node:net';
import { join } from 'node:path';
import {
  checkHello,
  compareEpoch,
  type Epoch,
  type HelloMessage,
  type Message,
  makeHello,
} from '@mimic/wire';
import type WebSocketClass from 'ws';
import { isLoopbackHost } from '../link/auth.js';
import { PeerAuth } from '../link/peer-auth.js';
import { type ProbeResult, probePeer } from '../link/peer-probe.js';
import { PeerSocket } from '../link/peer-socket.js';
import { serveControl } from '../node/control-socket.js';
import { AgentError } from '../node/errors.js';
import { RESERVED_ROOT_NAMES } from '../node/excludes.js';
import { resolveFolderId, writeFolderMarker } from '../node/folder-marker.js';
import { type Logger, limitRepeats, silentLogger } from '../node/log.js';
import { type ListenAddress, parsePeerUrl, resolveDir } from '../node/options.js';
import { requireCjs } from '../node/require-cjs.js';
import { Store } from '../node/store.js';
import { Primary } from '../primary/primary.js';
import { Applier } from './applier/applier.js';
import { Reconciler } from './reconciler.js';

const WebSocket: typeof WebSocketClass = requireCjs('ws');

export interface MirrorOptions {
  root: string;
  /** Every node this mirror may follow. */
  primaries: readonly string[];
  /** Where to serve once promoted (`promote()` needs it). */
  listen?: ListenAddress;
  /** Shared secret the primary must prove it holds, and this mirror proves in turn. */
  token?: Uint8Array;
  /** CA (PEM) to trust for wss:// primaries. */
  tlsCa?: Buffer;
  /** Certificate and key to serve wss:// with once promoted. */
  tls?: { cert: Buffer; key: Buffer };
  /** Once promoted, allow a non-loopback listener without a token. */
  insecure?: boolean;
  stateDir?: string;
  log?: Logger;
}

export interface ResolvedMirrorOptions {
  readonly root: string;
  readonly primaries: readonly string[];
  readonly listen: ListenAddress | null;
  readonly token: Uint8Array | null;
  readonly tlsCa: Buffer | null;
  readonly tls: { cert: Buffer; key: Buffer } | null;
  readonly insecure: boolean;
  readonly stateDir: string;
  readonly log: Logger;
}

export interface MirrorStatus {
  role: 'mirror';
  nodeId: string;
  epoch: Epoch;
  root: string;
  following: string | null;
  connected: boolean;
  appliedSeq: number;
  bytesReceived: number;
  diverged: number;
  /** The folder this mirror holds; null until it first follows a primary. */
  folderId: string | null;
  lastError: string | null;
  /**
   * Why the last connection was refused, while it still is: what was refused, its code, and
   * what an operator can do about it. Null once a primary is followed again.
   */
  refused: { code: string; message: string; hint: string; since: string } | null;
}

export interface MirrorEvents {
  connected: [url: string];
  /** Initial sync or catch-up by manifest: files fetched so far, of how many. */
  progress: [fetched: number, total: number];
  promoted: [primary: Primary];
  disconnected: [reason: string];
  applied: [seq: number];
  error: [err: Error];
}

/*
 * Connection states: idle → dialing → hello (both hellos exchanged) → reconcile | streaming.
 * Any failure closes the socket and dials again after a backoff (50 ms doubling to 8 s, each
 * delay drawn from 80-120% of that), cycling through the configured primaries. The backoff
 * starts over only after a connection that made progress or stayed up RESET_BACKOFF_MS: one
 * refused at every replay must not reconnect 20 times a second. Messages are applied strictly
 * in arrival order by one loop; the socket is paused while that loop is more than QUEUE_HIGH
 * bytes behind. The same refusal of the same op twice in a row stops the replay: the next
 * connection reconciles by manifest instead.
 */
const QUEUE_HIGH = 32 * 1024 * 1024;
const QUEUE_LOW = 8 * 1024 * 1024;
const ACK_EVERY_MS = 50;
const NEWER_PRIMARY_PROBE_MS = 3000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 8000;
/** A connection that stayed up this long was healthy: the next failure dials again at once. */
const RESET_BACKOFF_MS = 10_000;
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

/**
 * A primary's change tracker journals a write a little after it happens (watcher latency, a
 * batch): files changed this long before its last journal write may be missing from it.
 */
const UNJOURNALED_SLACK_MS = 2000;

/** Refusals by the mirror or its primary that an operator must act on (logged as `refused`). */
const REFUSALS = new Set(['ERR_FOLDER_ID', 'ERR_STALE_PRIMARY', 'ERR_AUTH', 'ERR_ROLE', 'ERR_UNSAFE_PATH']);

function resolveOptions(o: MirrorOptions): ResolvedMirrorOptions {
  const root = resolveDir(o.root, 'root');
  if (!o.primaries || o.primaries.length === 0)
    throw new TypeError('primaries: at least one URL is required');
  if (o.listen && !o.token && !o.insecure && !isLoopbackHost(o.listen.host)) {
    throw new AgentError(
      'ERR_INSECURE',
      `refusing to serve on ${o.listen.host} once promoted without a token: give --token-file, or --insecure`,
    );
  }
  return Object.freeze({
    root,
    primaries: Object.freeze(o.primaries.map(parsePeerUrl)),
    listen: o.listen ? Object.freeze({ ...o.listen }) : null,
    token: o.token ?? null,
    tlsCa: o.tlsCa ?? null,
    tls: o.tls ?? null,
    insecure: o.insecure ?? false,
    stateDir: o.stateDir ? resolveDir(o.stateDir, 'stateDir') : join(root, '.mimic'),
    log: limitRepeats(o.log ?? silentLogger),
  });
}

/** What a queued message counts for against QUEUE_HIGH: a write's content, else a token 64. */
function queuedBytes(msg: Message): number {
  return msg.type === 'op' && msg.op.kind === 'write' ? msg.op.data.length : 64;
}

/** A read-only copy of a primary's folder, kept current and durable. */
export class Mirror extends EventEmitter<MirrorEvents> {
  readonly options: ResolvedMirrorOptions;
  #store!: Store;
  #applier!: Applier;
  #nodeId = '';
  /** The folder this mirror holds (null: none yet; it adopts its first primary's). */
  #folderId: string | null = null;
  #epoch: Epoch = { term: 0, node: '' };
  #appliedSeq = 0;
  #lastAcked = 0;
  #socket: PeerSocket | null = null;
  #url: string | null = null;
  #state: 'idle' | 'hello' | 'reconcile' | 'streaming' = 'idle';
  #queue: Message[] = [];
  #queueBytes = 0;
  #draining = false;
  #closed = false;
  #attempt = 0;
  /** A background landing's failure, already logged: the op that next meets it logs nothing. */
  #landingFailure: Error | null = null;
  #reconnect: NodeJS.Timeout | null = null;
  #bytesReceived = 0;
  #forceReconcile = false;
  /** What the last dial found (see #isFresh): told to the primary in our hello. */
  #fresh = false;
  #reconciler: Reconciler | null = null;
  #lastError: string | null = null;
  #refused: MirrorStatus['refused'] = null;
  /** The op being applied, and the refusal of the last failed connection (see #drain). */
  #applying: { seq: number; path: string } | null = null;
  #lastFailure: { seq: number; code: string } | null = null;
  /**
   * The sequence of the op whose failure set #forceReconcile or #lastFailure: a landing that
   * records less than it finished before that failure and must not clear what it set.
   */
  #failedAt = 0;
  /** When the current connection was welcomed, and whether it applied anything new. */
  #upSince = 0;
  #progressed = false;
  /** The tree holds changes past the recorded sequence, and the store says so. */
  #unrecorded = false;
  /** A reconcile began and has not finished (its tree is between two sequences). */
  #reconciling = false;
  #control: Server | null = null;
  /** The epoch of the primary on the current connection, from its hello. */
  #primaryEpoch: Epoch = { term: 0, node: 'none' };
  #promoting = false;
  /** The primary's hello on the current connection, and whether it proved the token. */
  #peer: HelloMessage | null = null;
  #auth: PeerAuth | null = null;
  #authed = false;
  #probeTimer: NodeJS.Timeout | null = null;
  /** When the database was last written before this start (by this node as a primary, maybe). */
  #storeWrittenAt: number | null = null;

  constructor(options: MirrorOptions) {
    super();
    this.options = resolveOptions(options);
  }

  async start(): Promise<void> {
    const { root, stateDir } = this.options;
    const st = await stat(root).catch(() => null);
    if (!st?.isDirectory()) throw new AgentError('ERR_NO_ROOT', `${root}: no such folder`);
    await mkdir(stateDir, { recursive: true });
    this.#storeWrittenAt = await lastWriteOf(join(stateDir, 'mimic.db'));
    this.#store = new Store(join(stateDir, 'mimic.db'));
    try {
      this.#folderId = resolveFolderId({
        root,
        stateId: this.#store.folderId(),
        init: false,
        role: 'mirror',
      });
    } catch (err) {
      this.#store.close();
      throw err;
    }
    if (this.#folderId) this.#store.setFolderId(this.#folderId);
    this.#nodeId = this.#store.nodeId();
    // A former primary rejoining as a mirror has applied everything its own journal holds.
    this.#appliedSeq = this.#store.appliedSeq() ?? this.#store.lastSeq();
    this.#lastAcked = this.#appliedSeq;
    this.#epoch = this.#store.epoch();
    this.#store.setRole('mirror');
    if (this.#store.unrecorded()) {
      // It stopped after changing its tree past the recorded sequence: a replay of a rename
      // onto a name that got new content since would move the wrong file. Compare instead.
      this.#forceReconcile = true;
      this.options.log('unclean-stop', { appliedSeq: this.#appliedSeq, action: 'reconcile by manifest' });
    }
    const diverged = () => join(stateDir, 'diverged', String(this.#epoch.term));
    this.#applier = new Applier(root, this.#store, join(stateDir, 'tmp'), diverged, this.options.log);
    this.#applier.beforeTreeChange = () => this.#noteUnrecorded();
    await this.#applier.init();
    this.#applier.preserved = await countFiles(join(stateDir, 'diverged'));
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
    return {
      role: 'mirror',
      nodeId: this.#nodeId,
      epoch: this.#epoch,
      root: this.options.root,
      following: this.#url,
      connected: this.#state === 'streaming' || this.#state === 'reconcile',
      appliedSeq: this.#appliedSeq,
      bytesReceived: this.#bytesReceived,
      diverged: this.#applier?.preserved ?? 0,
      folderId: this.#folderId,
      lastError: this.#lastError,
      refused: this.#refused,
    };
  }

  #myHello(): HelloMessage {
    return makeHello({
      nodeId: this.#nodeId,
      role: 'mirror',
      epoch: this.#epoch,
      appliedSeq: this.#forceReconcile ? 0 : this.#appliedSeq,
      fresh: this.#fresh,
      nonce: randomBytes(32),
      ...(this.#folderId ? { folder: this.#folderId } : {}),
    });
  }

  /**
   * Asks every configured node who it is and picks the primary with the highest epoch (never
   * one older than the epoch this mirror already follows). Returns null when none answers.
   */
  async #choose(): Promise<ProbeResult | null> {
    const results = await Promise.all(
      this.options.primaries.map((url) =>
        probePeer(url, () => this.#myHello(), {
          token: this.options.token,
          ...(this.options.tlsCa ? { ca: this.options.tlsCa } : {}),
        }),
      ),
    );
    let best: ProbeResult | null = null;
    for (const r of results) {
      if (r?.hello.role !== 'primary' || compareEpoch(r.hello.epoch, this.#epoch) < 0) continue;
      if (this.#folderId && r.hello.folder !== this.#folderId) continue; // another folder's primary
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
    this.#fresh = await this.#isFresh();
    if (this.#closed || this.#promoting) return;
    this.#state = 'hello';
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
      handshakeTimeout: 10_000,
      ...(this.options.tlsCa ? { ca: this.options.tlsCa } : {}),
    });
    let opened = false;
    const sock = new PeerSocket(
      ws,
      (m) => this.#enqueue(m, sock),
      (reason) => this.#onClose(opened ? reason : `cannot reach ${url}: ${reason}`),
    );
    this.#socket = sock;
    ws.on('error', (err) => {
      this.#lastError = `${url}: ${err.message}`;
    });
    ws.on('open', () => {
      opened = true; // the primary speaks first; our hello answers its hello
      const timer = setTimeout(() => {
        if (this.#socket === sock && this.#state === 'hello') {
          sock.close(1008, 'ERR_HANDSHAKE_TIMEOUT: no hello, proof and welcome in time');
        }
      }, HANDSHAKE_TIMEOUT_MS);
      timer.unref();
    });
  }

  /** Nothing applied, nothing recorded, and nothing in the folder but mimic's own. */
  async #isFresh(): Promise<boolean> {
    if (this.#appliedSeq !== 0 || this.#forceReconcile || this.#applier.manifest.size > 0) return false;
    const names = await readdir(this.options.root).catch(() => null);
    return names?.every((n) => RESERVED_ROOT_NAMES.includes(n)) ?? false;
  }

  /** While following, look for a newer primary among the other configured nodes. */
  async #watchForNewer(): Promise<void> {
    if (this.#state !== 'streaming' || this.options.primaries.length < 2) return;
    const best = await this.#choose();
    if (best && this.#socket && best.url !== this.#url && compareEpoch(best.hello.epoch, this.#epoch) > 0) {
      this.options.log('newer-primary', { primary: best.url, epoch: best.hello.epoch });
      this.#socket.close(1000, `following the newer primary at ${best.url}`);
    }
  }

  #onClose(reason: string): void {
    this.#peer = null;
    this.#authed = false;
    const wasUp = this.#state === 'streaming' || this.#state === 'reconcile';
    this.#state = 'idle';
    this.#socket = null;
    this.#queue = [];
    this.#queueBytes = 0;
    this.#reconciler = null;
    if (wasUp) {
      this.options.log('disconnected', { primary: this.#url, reason });
      this.emit('disconnected', reason);
    } else {
      this.#lastError = reason;
    }
    if (this.#closed) return;
    // A healthy connection that ended starts the backoff over; a failing one doubles it.
    const healthy = wasUp && (this.#progressed || Date.now() - this.#upSince >= RESET_BACKOFF_MS);
    this.#attempt = healthy ? 1 : this.#attempt + 1;
    this.#progressed = false;
    // Soon at first: a mirror started with its primary (or just after it restarted) would
    // otherwise wait a quarter of a second for a port that opens a moment later.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(12, this.#attempt - 1));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    if (this.#attempt % 10 === 1 || this.#attempt === 2)
      this.options.log('retrying', { primary: this.#url, reason, delayMs: delay, attempt: this.#attempt });
    this.#reconnect = setTimeout(() => {
      void this.#drain().then(() => this.#dial());
    }, delay);
  }

  #enqueue(msg: Message, sock: PeerSocket): void {
    if (sock !== this.#socket) return;
    this.#bytesReceived = sock.bytesReceived;
    if (msg.type === 'ops') {
      // Each op as if it had come alone, in order.
      for (let i = 0; i < msg.ops.length; i++) {
        const one: Message = { type: 'op', epoch: msg.epoch, seq: msg.seqs[i]!, op: msg.ops[i]! };
        this.#queue.push(one);
        this.#queueBytes += queuedBytes(one);
      }
    } else {
      this.#queue.push(msg);
      this.#queueBytes += queuedBytes(msg);
    }
    if (this.#queueBytes > QUEUE_HIGH) sock.ws.pause();
    if (!this.#draining) void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    const sock = this.#socket;
    try {
      // Messages may arrive while a checkpoint awaits its fsyncs: loop until none is left.
      while (this.#queue.length > 0) {
        for (;;) {
          const msg = this.#queue.shift();
          if (!msg) break;
          this.#queueBytes -= queuedBytes(msg);
          if (sock && this.#queueBytes < QUEUE_LOW) sock.ws.resume();
          await this.#handle(msg);
        }
        if (!this.#applier.busy && this.#state === 'streaming') await this.#checkpoint();
      }
    } catch (err) {
      const e = err as { code?: string; message: string; path?: string };
      // The connection ends here, and nothing it still brings is applied: ops arrive until its
      // close completes, and applying them would record (and acknowledge on the next
      // connection) a sequence past the op that failed.
      const failed = this.#socket;
      this.#socket = null;
      this.#queue = [];
      this.#lastError = e.message;
      const code = e.code ?? 'ERR_APPLY';
      const applying = this.#applying;
      this.#applying = null;
      if (REFUSALS.has(code)) this.#refuse(code, e.message);
      // A batch that failed to land was logged as it failed; the next op only meets it again.
      else if (err !== this.#landingFailure) this.options.log('apply-failed', { error: e.message, code });
      this.#landingFailure = null;
      await this.#applier.abandon();
      // A batch that did not land is found again by comparing manifests.
      if (['ERR_BASIS_MISMATCH', 'ERR_BAD_DELTA', 'ERR_LAND', undefined].includes(e.code))
        this.#forceReconcile = true;
      // The same op refused the same way twice: replaying it again would only fail again.
      const last = this.#lastFailure;
      if (applying && last && last.seq === applying.seq && last.code === code && !this.#forceReconcile) {
        this.#forceReconcile = true;
        this.options.log('replay-refused', {
          seq: applying.seq,
          path: e.path ?? applying.path,
          code,
          action: 'reconcile by manifest',
        });
      }
      this.#lastFailure = applying ? { seq: applying.seq, code } : null;
      this.#failedAt = applying?.seq ?? this.#appliedSeq + 1;
      failed?.close(1011, `${code}: ${e.message}`);
    } finally {
      this.#draining = false;
    }
  }

  /**
   * Makes everything applied durable, records the sequence and acknowledges it. The files land
   * in the background while the next ones are rebuilt; the ack goes once they have.
   */
  async #checkpoint(): Promise<void> {
    const seq = this.#appliedSeq;
    const record =
      seq === this.#lastAcked
        ? undefined
        : () => {
            this.#store.setAppliedSeq(seq);
            this.#unrecorded = false;
          };
    if (record) this.#lastAcked = seq;
    this.#ackAt = Date.now();
    const sock = this.#socket;
    await this.#applier.commitSoon(record, (err) => {
      if (err) {
        this.#forceReconcile = true;
        this.#lastError = err.message;
        const code = (err as { code?: string }).code ?? 'ERR_APPLY';
        this.options.log('apply-failed', { error: err.message, code });
        this.#landingFailure = err;
        this.#failedAt = Math.max(this.#failedAt, seq);
        sock?.close(1011, `${code}: ${err.message}`);
        return;
      }
      if (!record) return;
      // Batches land in the background: this one may complete after a later op failed.
      if (seq >= this.#failedAt) {
        this.#forceReconcile = false;
        this.#progressed = true;
        this.#lastFailure = null;
      }
      if (sock === this.#socket) void sock?.send({ type: 'ack', epoch: this.#epoch, seq });
      this.emit('applied', seq);
    });
  }

  async #handle(msg: Message): Promise<void> {
    const sock = this.#socket;
    if (!sock) return;
    if (msg.type === 'hello') {
      if (this.#peer) throw new AgentError('ERR_PROTOCOL', 'a second hello');
      const hello = checkHello(msg, undefined, this.#nodeId);
      if (hello.role !== 'primary')
        throw new AgentError('ERR_ROLE', `${this.#url} is a ${hello.role}, not a primary`);
      if (hello.folder === undefined || (this.#folderId !== null && hello.folder !== this.#folderId)) {
        // Before our hello: a primary of another folder learns nothing of this one.
        const theirs = hello.folder === undefined ? 'names no folder' : `serves folder ${hello.folder}`;
        throw new AgentError(
          'ERR_FOLDER_ID',
          `${this.#url} ${theirs}, but this mirror holds folder ${this.#folderId}: refusing to follow it; every file here is kept`,
        );
      }
      this.#peer = hello;
      const auth = new PeerAuth(this.options.token, this.#nodeId);
      this.#auth = auth;
      this.#authed = !auth.required;
      await sock.send({ ...this.#myHello(), nonce: auth.nonce });
      if (auth.required) await sock.send(auth.proofFor(hello));
      if (compareEpoch(hello.epoch, this.#epoch) < 0) {
        // A primary of an older epoch: it has our hello now (and fences itself); do not follow it.
        throw new AgentError(
          'ERR_STALE_PRIMARY',
          `${this.#url} is a superseded primary (epoch ${hello.epoch.term})`,
        );
      }
      this.#primaryEpoch = hello.epoch;
      return;
    }
    if (!this.#peer) throw new AgentError('ERR_PROTOCOL', `${msg.type} before hello`);
    if (!this.#authed) {
      if (msg.type !== 'auth' || !this.#auth!.verify(this.#peer, msg)) {
        throw new AgentError('ERR_AUTH', `${this.#url} did not prove it holds the token`);
      }
      this.#authed = true;
      return;
    }
    if (msg.type !== 'error' && 'epoch' in msg && compareEpoch(msg.epoch, this.#primaryEpoch) !== 0) {
      throw Object.assign(
        new Error(`${msg.type} from epoch ${msg.epoch.term}, not ${this.#primaryEpoch.term}`),
        {
          code: 'ERR_EPOCH',
        },
      );
    }
    if (msg.type === 'welcome') {
      if (this.#folderId === null) this.#adoptFolder(this.#peer.folder!);
      await this.#divergedSince(msg.fork);
      this.#epoch = msg.epoch;
      this.#store.setEpoch(msg.epoch);
      this.#upSince = Date.now();
      this.#lastError = null;
      this.#refused = null;
      this.options.log('connected', {
        primary: this.#url,
        mode: msg.mode,
        seq: msg.seq,
        appliedSeq: this.#appliedSeq,
      });
      this.emit('connected', this.#url!);
      if (msg.mode === 'resume') {
        this.#state = 'streaming';
      } else {
        this.#noteUnrecorded();
        this.#reconciling = true;
        this.#state = 'reconcile';
        this.#reconciler = new Reconciler(
          this.#applier,
          msg.seq,
          (m) => sock.send(m),
          () => this.#epoch,
          this.options.log,
        );
      }
      return;
    }
    if (msg.type === 'manifest') {
      await this.#reconciler?.page(msg.entries, msg.last);
      await this.#finishReconcile();
      return;
    }
    if (msg.type === 'op') {
      this.#applying = { seq: msg.seq, path: msg.op.kind === 'rename' ? msg.op.from : msg.op.path };
      if (this.#state === 'reconcile') {
        await this.#applier.apply(msg.op);
        if (msg.op.kind !== 'write' || msg.op.last) {
          const r = this.#reconciler;
          if (r) {
            r.answered();
            this.emit('progress', r.fetched, r.needed);
          }
        }
        await this.#finishReconcile();
        return;
      }
      if (msg.seq <= this.#appliedSeq && !(msg.op.kind === 'write' && this.#applier.busy)) {
        if (msg.op.kind !== 'write' || msg.op.part === 0) return; // already applied before a reconnect
      }
      await this.#applier.apply(msg.op);
      if (msg.op.kind !== 'write' || msg.op.last) {
        this.#appliedSeq = Math.max(this.#appliedSeq, msg.seq);
        // While the previous group is still landing, the files rebuilt meanwhile wait for the
        // next checkpoint (after it, or when the queue runs dry) rather than hold up the stream.
        if (this.#applier.hasPending && !this.#applier.landing && Date.now() - this.#ackAt > ACK_EVERY_MS)
          await this.#checkpoint();
      }
      return;
    }
    if (msg.type === 'error') {
      if (REFUSALS.has(msg.code)) this.#refuse(msg.code, `${this.#url} refused this mirror: ${msg.message}`);
      else this.options.log('primary-error', { code: msg.code, message: msg.message });
      return;
    }
    throw new AgentError('ERR_PROTOCOL', `unexpected ${msg.type} from the primary`);
  }

  #ackAt = 0;

  /** Before the tree changes past the recorded sequence: once per checkpoint (see unrecorded). */
  #noteUnrecorded(): void {
    if (this.#unrecorded) return;
    this.#store.markUnrecorded();
    this.#unrecorded = true;
  }

  /** A new mirror takes the identity of the first folder it follows: state, then marker. */
  #adoptFolder(id: string): void {
    this.#store.setFolderId(id);
    writeFolderMarker(this.options.root, id);
    this.#folderId = id;
    this.options.log('folder-adopted', { folderId: id, primary: this.#url });
  }

  /** A connection refused for a reason an operator must see: one line, and in status. */
  #refuse(code: string, message: string): void {
    const hint = REFUSAL_HINTS[code] ?? '';
    if (this.#refused?.code !== code || this.#refused.message !== message)
      this.#refused = { code, message, hint, since: new Date().toISOString() };
    this.options.log('refused', { primary: this.#url, code, error: message, ...(hint ? { hint } : {}) });
  }

  async #finishReconcile(): Promise<void> {
    const r = this.#reconciler;
    if (!r?.done) return;
    this.#reconciler = null;
    await r.finishDirs();
    this.#reconciling = false;
    this.#state = 'streaming';
    this.#appliedSeq = r.seq;
    this.#lastAcked = -1;
    await this.#checkpoint();
    this.options.log('caught-up', { seq: r.seq, fetched: r.needed, kept: this.#applier.preserved });
  }

  /** Paths this node journaled after `fork.seq` when `fork.epoch` was its own epoch as primary. */
  async #divergedSince(fork: { epoch: Epoch; seq: number } | undefined): Promise<Set<string>> {
    const keep = new Set<string>();
    if (!fork || compareEpoch(fork.epoch, this.#epoch) !== 0) return keep;
    await this.#unjournaledEdits(keep);
    if (this.#store.firstSeq() > fork.seq + 1) {
      // Rows after the fork were dropped (a journal bound): which paths changed since is not
      // known, so every file this node holds that differs from the new primary's is kept.
      for (const [path, rec] of this.#applier.manifest) if (rec.kind !== 'dir') keep.add(path);
    }
    for (let from = fork.seq + 1; ; ) {
      const rows = this.#store.readJournal(from, 1000);
      if (rows.length === 0) break;
      for (const { op } of rows) {
        if (op.kind === 'rename') keep.add(op.to);
        else if (op.kind === 'write' || op.kind === 'symlink' || op.kind === 'meta') keep.add(op.path);
      }
      from = rows[rows.length - 1]!.seq + 1;
    }
    this.#applier.keep = keep;
    if (keep.size > 0) this.options.log('rejoin', { forkSeq: fork.seq, divergedPaths: keep.size });
    return keep;
  }

  /**
   * Files this node changed as a primary just before it stopped, after its last journal write:
   * their stat can still match the manifest (a same-size rewrite in the same clock tick), so
   * any file changed since shortly before that write is hashed and kept if it differs.
   */
  async #unjournaledEdits(keep: Set<string>): Promise<void> {
    if (this.#storeWrittenAt === null) return;
    const since = this.#storeWrittenAt - UNJOURNALED_SLACK_MS;
    for (const [path, rec] of this.#applier.manifest) {
      if (rec.kind !== 'file' || !rec.hash || keep.has(path)) continue;
      const e = await this.#applier.statLocal(path).catch(() => null);
      if (e?.kind !== 'file' || e.ctimeMs < since || !this.#applier.isOurs(path, e)) continue;
      if ((await this.#applier.hashLocal(path)) !== rec.hash) keep.add(path);
    }
  }

  /**
   * Becomes the primary: stops following, takes the next epoch (a higher term, this node's
   * id), records durably where it forked from the old epoch, and serves on `listen`. Resolves
   * with the running Primary once all of that is durable.
   */
  async promote(): Promise<Primary> {
    const listen = this.options.listen;
    if (!listen)
      throw new AgentError('ERR_NO_LISTEN', 'this mirror was started without --listen; it cannot serve');
    if (this.#promoting || this.#closed)
      throw new AgentError('ERR_NOT_MIRROR', 'this node is not a running mirror');
    this.#promoting = true;
    const old = this.#epoch;
    if (this.#reconnect) clearTimeout(this.#reconnect);
    this.#socket?.close(1001, 'promoted');
    while (this.#draining) await new Promise((r) => setTimeout(r, 5));
    await this.#applier.abandon();
    await this.#applier.commit();
    const epoch: Epoch = { term: old.term + 1, node: this.#nodeId };
    this.#store.recordPromotion(this.#appliedSeq, old, epoch);
    this.options.log('promoting', { from: old, to: epoch, forkSeq: this.#appliedSeq });
    await this.close();
    const primary = new Primary({
      root: this.options.root,
      listen,
      stateDir: this.options.stateDir,
      peers: this.options.primaries,
      log: this.options.log,
      ...(this.options.token ? { token: this.options.token } : {}),
      ...(this.options.tls ? { tls: this.options.tls } : {}),
      ...(this.options.tlsCa ? { tlsCa: this.options.tlsCa } : {}),
      insecure: this.options.insecure,
    });
    await primary.start();
    this.options.log('promoted', { epoch, listen: `${listen.host}:${primary.address.port}` });
    this.emit('promoted', primary);
    return primary;
  }

  async close(): Promise<void> {
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    this.#closed = true;
    if (this.#reconnect) clearTimeout(this.#reconnect);
    this.#socket?.close(1001, 'mirror shutting down');
    this.#control?.close();
    while (this.#draining) await new Promise((r) => setTimeout(r, 10));
    await this.#applier?.abandon();
    // A clean stop records what it applied, so that the next start resumes without a compare;
    // a reconcile cut short is not a sequence one can resume from.
    const clean = !this.#reconciling && !this.#forceReconcile && this.#applier !== undefined;
    const record = clean ? () => this.#store.setAppliedSeq(this.#appliedSeq) : undefined;
    await this.#applier?.commit(record).catch(() => {});
    this.#applier?.close();
    this.#store?.close();
  }
}

/** The latest mtime of a SQLite database and its write-ahead log, or null if neither exists. */
async function lastWriteOf(db: string): Promise<number | null> {
  const times = await Promise.all(
    [db, `${db}-wal`].map((f) =>
      stat(f).then(
        (st) => st.mtimeMs,
        () => null,
      ),
    ),
  );
  const known = times.filter((t): t is number => t !== null);
  return known.length > 0 ? Math.max(...known) : null;
}

/** Files below `dir` (0 when it does not exist). */
async function countFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => !e.isDirectory()).length;
}
