/*
 * One connection from a mirror to a primary, and everything that lives only as long as it.
 *
 * States: hello (waiting for the primary's hello) → proof (its hello came, the token proof
 * has not; skipped without a token) → welcome → reconcile | streaming. An apply that fails
 * moves it to failed (nothing it still brings is applied) and closes the socket; the socket's
 * close moves any state to closed.
 *
 * Messages are applied strictly in arrival order by one loop (the drain); the socket is paused
 * while that loop is more than QUEUE_HIGH bytes behind. `idle()` resolves once the loop ends,
 * so that a close, a promotion or the next connection waits for it rather than polling.
 */
import { compareEpoch, type Epoch, type HelloMessage, type Message } from '@mimic/wire';
import type WebSocket from 'ws';
import { Handshake } from '../link/handshake.js';
import { PeerSocket } from '../link/peer-socket.js';
import { AgentError, codeOf } from '../node/errors.js';
import { NO_EPOCH } from '../node/store-schema.js';
import { type Applying, type CheckpointTarget, type FollowState, REFUSALS } from './follow-state.js';
import { Reconciler } from './reconciler.js';
import { divergedSince } from './rejoin.js';

const QUEUE_HIGH = 32 * 1024 * 1024;
const QUEUE_LOW = 8 * 1024 * 1024;
const ACK_EVERY_MS = 50;

export type ConnectionState = 'hello' | 'proof' | 'welcome' | 'reconcile' | 'streaming' | 'failed' | 'closed';

type OpMessage = Extract<Message, { type: 'op' }>;
type WelcomeMessage = Extract<Message, { type: 'welcome' }>;

/** What a queued message counts for against QUEUE_HIGH: a write's content, else a token 64. */
function queuedBytes(msg: Message): number {
  return msg.type === 'op' && msg.op.kind === 'write' ? msg.op.data.length : 64;
}

export class Connection implements CheckpointTarget {
  readonly url: string;
  readonly socket: PeerSocket;
  readonly #s: FollowState;
  #state: ConnectionState = 'hello';
  #queue: Message[] = [];
  #queueBytes = 0;
  #draining = false;
  #drained: Promise<void> = Promise.resolve();
  /** The hello and token proof each way; the primary's hello once it came. */
  readonly #handshake: Handshake;
  #peer: HelloMessage | null = null;
  /** The epoch of the primary, from its hello. */
  #primaryEpoch: Epoch = NO_EPOCH;
  #reconciler: Reconciler | null = null;
  /** The op being applied (see #drain). */
  #applying: Applying | null = null;
  /** When the primary welcomed this connection; null until it has. */
  #upSince: number | null = null;

  /** `onClose` is called once the socket has closed, after this connection has let go of it. */
  constructor(
    s: FollowState,
    url: string,
    ws: WebSocket,
    token: Uint8Array | null,
    onClose: (reason: string) => void,
  ) {
    this.#s = s;
    this.url = url;
    this.#handshake = new Handshake(token, s.nodeId, (nonce, peer) => s.hello(nonce, peer));
    this.socket = new PeerSocket(
      ws,
      (m) => this.#enqueue(m),
      (reason) => {
        this.#state = 'closed';
        this.#queue = [];
        this.#queueBytes = 0;
        this.#reconciler = null;
        onClose(reason);
      },
      null,
      { receive: s.receive },
    );
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Hello, proof and welcome not all exchanged yet. */
  get handshaking(): boolean {
    return this.#state === 'hello' || this.#state === 'proof' || this.#state === 'welcome';
  }

  /** Welcomed and the socket not closed yet. */
  get up(): boolean {
    return this.#upSince !== null && this.#state !== 'closed';
  }

  /** When the primary welcomed this connection (null: it never did). */
  get upSince(): number | null {
    return this.#upSince;
  }

  get current(): boolean {
    return this.#state !== 'failed' && this.#state !== 'closed';
  }

  send(msg: Message): Promise<void> {
    return this.socket.send(msg);
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  /** Resolves once the drain loop has ended (at once when it is not running). */
  idle(): Promise<void> {
    return this.#drained.then(
      () => {},
      () => {},
    );
  }

  #enqueue(msg: Message): void {
    if (!this.current) return;
    // Before the next message is decoded: what follows the welcome may come compressed.
    if (msg.type === 'welcome' && !this.socket.agree(msg.codec, this.#handshake.hello().codecs)) return;
    const s = this.#s;
    s.bytesReceived = this.socket.bytesReceived;
    if (msg.type === 'op' || msg.type === 'ops') {
      const last = msg.type === 'op' ? msg.seq : msg.seqs[msg.seqs.length - 1]!;
      s.counters.opsReceived += msg.type === 'op' ? 1 : msg.ops.length;
      s.received.forget(s.appliedSeq);
      s.received.note(last);
    }
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
    if (this.#queueBytes > QUEUE_HIGH) this.socket.hold('queue');
    if (!this.#draining) {
      this.#draining = true;
      this.#drained = this.#drain();
    }
  }

  async #drain(): Promise<void> {
    try {
      // Messages may arrive while a checkpoint awaits its fsyncs: loop until none is left.
      while (this.#queue.length > 0) {
        for (;;) {
          const msg = this.#queue.shift();
          if (!msg) break;
          this.#queueBytes -= queuedBytes(msg);
          if (this.#queueBytes < QUEUE_LOW) this.socket.release('queue');
          await this.#dispatch(msg);
        }
        if (!this.#s.applier.busy && this.#state === 'streaming') await this.#s.checkpoint(this);
      }
    } catch (err) {
      // The connection ends here, and nothing it still brings is applied: ops arrive until its
      // close completes, and applying them would record (and acknowledge on the next
      // connection) a sequence past the op that failed.
      const open = this.#state !== 'closed';
      if (open) this.#state = 'failed';
      this.#queue = [];
      const applying = this.#applying;
      this.#applying = null;
      const code = await this.#s.failed(err, applying, this.url);
      if (open) this.socket.close(1011, `${code}: ${(err as Error).message}`);
    } finally {
      this.#draining = false;
    }
  }

  async #dispatch(msg: Message): Promise<void> {
    if (!this.current) return;
    if (this.#state === 'hello' || this.#state === 'proof' || msg.type === 'hello') {
      const was = this.#handshake.state;
      try {
        this.#handshake.receive(msg);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'ERR_AUTH')
          throw new AgentError('ERR_AUTH', `${this.url} did not prove it holds the token`);
        if (code === 'ERR_PROTOCOL' && was === 'hello')
          throw new AgentError('ERR_PROTOCOL', `${msg.type} before hello`);
        throw err;
      }
      if (was === 'hello') return this.#hello(this.#handshake.peer!);
      this.#enter('welcome');
      return;
    }
    if (msg.type !== 'error' && 'epoch' in msg && compareEpoch(msg.epoch, this.#primaryEpoch) !== 0) {
      throw new AgentError(
        'ERR_EPOCH',
        `${msg.type} from epoch ${msg.epoch.term}, not ${this.#primaryEpoch.term}`,
      );
    }
    switch (msg.type) {
      case 'welcome':
        return this.#welcome(msg);
      case 'manifest':
        await this.#reconciler?.page(msg.entries, msg.last);
        if (msg.last && this.#reconciler) {
          const r = this.#reconciler;
          this.#s.progress.plan(this.#s.fresh ? 'initial' : 'reconcile', r.needed, r.neededBytes);
        }
        return this.#finishReconcile();
      case 'op':
        return this.#op(msg);
      case 'error':
        if (REFUSALS.has(msg.code))
          this.#s.refuse(msg.code, `${this.url} refused this mirror: ${msg.message}`, this.url);
        else this.#s.log('primary-error', { code: msg.code, message: msg.message });
        return;
      default:
        throw new AgentError('ERR_PROTOCOL', `unexpected ${msg.type} from the primary`);
    }
  }

  /** A handshake step or a reconcile ending moves on, unless the socket closed meanwhile. */
  #enter(state: ConnectionState): void {
    if (this.#state !== 'closed') this.#state = state;
  }

  async #hello(hello: HelloMessage): Promise<void> {
    const s = this.#s;
    if (hello.role !== 'primary')
      throw new AgentError('ERR_ROLE', `${this.url} is a ${hello.role}, not a primary`);
    if (hello.folder === undefined || (s.folderId !== null && hello.folder !== s.folderId)) {
      // Before our hello: a primary of another folder learns nothing of this one.
      const theirs = hello.folder === undefined ? 'names no folder' : `serves folder ${hello.folder}`;
      throw new AgentError(
        'ERR_FOLDER_ID',
        `${this.url} ${theirs}, but this mirror holds folder ${s.folderId}: refusing to follow it; every file here is kept`,
      );
    }
    this.#peer = hello;
    const authenticated = this.#handshake.authenticated;
    this.#enter(authenticated ? 'proof' : 'welcome');
    await this.socket.send(this.#handshake.hello());
    if (authenticated) await this.socket.send(this.#handshake.proof());
    if (compareEpoch(hello.epoch, s.epoch) < 0) {
      // A primary of an older epoch: it has our hello now (and fences itself); do not follow it.
      throw new AgentError(
        'ERR_STALE_PRIMARY',
        `${this.url} is a superseded primary (epoch ${hello.epoch.term})`,
      );
    }
    this.#primaryEpoch = hello.epoch;
  }

  async #welcome(msg: WelcomeMessage): Promise<void> {
    const s = this.#s;
    if (s.folderId === null) s.adoptFolder(this.#peer!.folder!, this.url);
    await divergedSince(s, msg.fork);
    s.epoch = msg.epoch;
    s.store.setEpoch(msg.epoch);
    s.applier.meta.xattrs.peer = msg.xattrs;
    this.#upSince = Date.now();
    s.lastError = null;
    s.refused = null;
    s.log('connected', { primary: this.url, mode: msg.mode, seq: msg.seq, appliedSeq: s.appliedSeq });
    s.events.emit('connected', this.url);
    s.received.forget(s.appliedSeq);
    s.received.note(msg.seq);
    if (msg.mode === 'resume') {
      s.progress.catchUp(s.fresh, s.appliedSeq, msg.seq);
      this.#enter('streaming');
    } else {
      s.noteUnrecorded();
      s.reconciling = true;
      this.#enter('reconcile');
      this.#reconciler = new Reconciler(
        s.applier,
        msg.seq,
        (m) => this.socket.send(m),
        () => s.epoch,
        s.log,
      );
    }
  }

  async #op(msg: OpMessage): Promise<void> {
    const s = this.#s;
    const a = s.applier;
    this.#applying = { seq: msg.seq, path: msg.op.kind === 'rename' ? msg.op.from : msg.op.path };
    if (this.#state === 'reconcile') {
      await a.apply(msg.op);
      if (msg.op.kind !== 'write' || msg.op.last) {
        const r = this.#reconciler;
        if (r) {
          r.answered();
          s.progress.done(msg.op.kind === 'write' ? msg.op.size : 0);
          s.events.emit('progress', r.fetched, r.needed);
        }
      }
      return this.#finishReconcile();
    }
    if (msg.seq <= s.appliedSeq && !(msg.op.kind === 'write' && a.busy)) {
      if (msg.op.kind !== 'write' || msg.op.part === 0) return; // already applied before a reconnect
    }
    await a.apply(msg.op);
    if (msg.op.kind !== 'write' || msg.op.last) {
      s.appliedSeq = Math.max(s.appliedSeq, msg.seq);
      s.progress.applied(s.appliedSeq);
      // While the previous group is still landing, the files rebuilt meanwhile wait for the
      // next checkpoint (after it, or when the queue runs dry) rather than hold up the stream.
      if (a.hasPending && !a.landing && Date.now() - s.ackAt > ACK_EVERY_MS) await s.checkpoint(this);
    }
  }

  async #finishReconcile(): Promise<void> {
    const s = this.#s;
    const r = this.#reconciler;
    if (!r?.done) return;
    this.#reconciler = null;
    await r.finish();
    s.reconciling = false;
    if (this.#state === 'reconcile') this.#enter('streaming');
    s.appliedSeq = r.seq;
    s.lastAcked = -1;
    await s.checkpoint(this);
    s.progress.end();
    s.log('caught-up', { seq: r.seq, fetched: r.needed, kept: s.applier.preserved });
  }
}
