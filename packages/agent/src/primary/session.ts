import {
  availableCodecs,
  chooseCodec,
  compareEpoch,
  type Epoch,
  type HelloMessage,
  type ManifestEntry,
  type Message,
  type NeedMessage,
  type WelcomeMessage,
} from '@mimic/wire';
import type WebSocket from 'ws';
import type { Pacer, SharedLimits } from '../link/bandwidth.js';
import { withCompression } from '../link/compression.js';
import { Handshake, type HandshakeState } from '../link/handshake.js';
import { type Corkable, PeerSocket } from '../link/peer-socket.js';
import { AgentError, codeOf } from '../node/errors.js';
import { attrsOf } from '../node/local-fs.js';
import type { FileRecord, Store } from '../node/store.js';
import { OpBatcher } from './op-batcher.js';
import { OpSender, type SessionTracker } from './session-sender.js';
import { QUIET_MS, SigningScheduler } from './signing-scheduler.js';

/*
 * The primary's side of one mirror connection.
 *
 *   hello      both sides send hello (ours on connect); the mirror's says which epoch and
 *              sequence it applied. With a token the primary answers it with its proof: auth
 *   auth       the mirror's proof of the token, over our nonce, or the connection is refused
 *   then one of (see #start):
 *   reconcile  (fresh mirror, or journal no longer reaching back) the primary sends its
 *              manifest as of sequence S; the mirror asks for what differs with `need`, each
 *              answered by one op at sequence S; the mirror's ack of S ends the phase
 *   streaming  journal rows from the cursor, within the socket's send window; acks move
 *              `ackedSeq`. Needs that arrive later are answered first.
 *   closed     the socket closed, for whatever reason; the pump stops.
 *
 * What is sent for a row or a need is OpSender's (session-sender.ts); OpBatcher groups the
 * small ops into messages; SigningScheduler signs what went whole when the session is quiet.
 */

export type SessionState = 'hello' | 'auth' | 'reconcile' | 'streaming' | 'closed';

/** What a session needs of the primary: the seam its tests fill with a fake. */
export interface SessionContext {
  readonly nodeId: string;
  /** The folder this primary serves: a mirror holding another one is refused. */
  readonly folderId: string;
  readonly root: string;
  readonly store: Store;
  readonly tracker: SessionTracker;
  epoch(): Epoch;
  /** This primary's hello (its epoch and role as they are now), carrying the session's nonce. */
  hello(nonce: Uint8Array): HelloMessage;
  /** Where this primary's epoch forked from its predecessor, if it was promoted. */
  fork(): { epoch: Epoch; seq: number } | undefined;
  fenced(): boolean;
  /** Shared token; null when peers are not authenticated. */
  readonly token: Uint8Array | null;
  /** Compression asked for every mirror, and the bandwidth limits their links share. */
  readonly wan?: { readonly compress: boolean; readonly links: SharedLimits };
  /** Logs a refused peer (rate-limited). */
  refused(remote: string, reason: string): void;
  /** A peer's hello carried this epoch (and maybe its URL). */
  learnEpoch(epoch: Epoch, url: string | null): void;
  log(event: string, fields: Record<string, unknown>): void;
  onAck(session: MirrorSession): void;
  onClose(session: MirrorSession): void;
}

const HELLO_TIMEOUT_MS = 10_000;
const MANIFEST_PAGE = 1000;
const JOURNAL_BATCH = 256;

function toWireEntry(r: FileRecord): ManifestEntry {
  const e: ManifestEntry = {
    path: r.path,
    kind: r.kind,
    size: r.size,
    mtimeMs: r.mtimeMs,
    mode: r.mode,
    ...attrsOf(r),
  };
  if (r.hash !== undefined) e.hash = r.hash;
  if (r.target !== undefined) e.target = r.target;
  if (r.link !== undefined && r.kind === 'file') e.link = r.link;
  return e;
}

export class MirrorSession {
  readonly socket: PeerSocket;
  id = '';
  ackedSeq = 0;
  state: SessionState = 'hello';
  readonly #ctx: SessionContext;
  #cursor = 0;
  #snapshotSeq = 0;
  #needs: NeedMessage[] = [];
  #handshake: Handshake;
  readonly #remote: string;
  #wake: (() => void) | null = null;
  readonly #signing: SigningScheduler;
  /** Ops waiting to leave in one message; sent before anything else is. */
  readonly #ops: OpBatcher;
  readonly #sender: OpSender;
  /** Ops sent on this connection. */
  opsSent = 0;
  readonly #pacer: Pacer | null;

  constructor(ws: WebSocket, ctx: SessionContext, remote: string, transport: Corkable | null = null) {
    this.#ctx = ctx;
    this.#remote = remote;
    this.#pacer = ctx.wan?.links.link() ?? null;
    this.socket = new PeerSocket(
      ws,
      (m) => this.#onMessage(m),
      (reason) => this.#onClose(reason),
      transport,
      { pacer: this.#pacer },
    );
    this.#signing = new SigningScheduler(ctx.store, ctx.root);
    // Built from the journal and manifest, whose paths were checked on the way in.
    // Checked before each send, not only on a timer: a primary whose lease ran out while its
    // event loop stalled sends nothing more (ctx.fenced() then fences it).
    this.#ops = new OpBatcher(
      async (msg) => {
        if (!ctx.fenced()) {
          this.opsSent += msg.type === 'ops' ? msg.ops.length : 1;
          return this.socket.send(msg, { trusted: true });
        }
        this.socket.close(4001, 'ERR_FENCED: this primary no longer leads');
      },
      () => ctx.epoch(),
    );
    this.#sender = new OpSender(ctx, this.#ops, this.#signing, () => this.connected);
    const timer = setTimeout(() => {
      if (this.state === 'hello' || this.state === 'auth') {
        this.socket.close(1008, 'ERR_HANDSHAKE_TIMEOUT: no hello and proof in time');
      }
    }, HELLO_TIMEOUT_MS);
    timer.unref();
    const ask = ctx.wan?.compress ?? false;
    this.#handshake = new Handshake(ctx.token, ctx.nodeId, (nonce) => withCompression(ctx.hello(nonce), ask));
    void this.socket.send(this.#handshake.hello());
  }

  get connected(): boolean {
    return this.state !== 'closed' && this.socket.open;
  }

  /** New journal rows exist. */
  poke(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  #onClose(reason: string): void {
    this.state = 'closed';
    if (this.#pacer) this.#ctx.wan?.links.release(this.#pacer);
    this.poke();
    this.#ctx.log('mirror-disconnected', { mirror: this.id || '(before hello)', reason });
    this.#ctx.onClose(this);
  }

  #onMessage(msg: Message): void {
    try {
      this.#handle(msg);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      this.socket.close(1008, `${e.code ?? 'ERR_PROTOCOL'}: ${e.message}`);
    }
  }

  #handle(msg: Message): void {
    if (this.state === 'hello' || this.state === 'auth') {
      let next: HandshakeState;
      try {
        next = this.#handshake.receive(msg);
      } catch (err) {
        if (codeOf(err) !== 'ERR_AUTH') throw err;
        this.#ctx.refused(this.#remote, msg.type === 'auth' ? 'wrong token' : 'no proof of the token');
        this.socket.close(4003, 'ERR_AUTH: authentication failed');
        return;
      }
      const hello = this.#handshake.peer!;
      if (next === 'proof') {
        this.state = 'auth';
        void this.socket.send(this.#handshake.proof());
        return;
      }
      this.#start(hello);
      return;
    }
    if ((msg.type === 'ack' || msg.type === 'need') && compareEpoch(msg.epoch, this.#ctx.epoch()) !== 0) {
      // From a mirror still in another epoch: refused, never counted.
      throw new AgentError(
        'ERR_EPOCH',
        `${msg.type} for epoch ${msg.epoch.term}, not ${this.#ctx.epoch().term}`,
      );
    }
    switch (msg.type) {
      case 'ack':
        if (this.state === 'reconcile' && msg.seq === this.#snapshotSeq) {
          this.state = 'streaming';
          this.#cursor = this.#snapshotSeq + 1;
          this.#ctx.log('mirror-reconciled', { mirror: this.id, seq: msg.seq });
        }
        if (msg.seq > this.ackedSeq) this.ackedSeq = msg.seq;
        this.#ctx.onAck(this);
        this.poke();
        return;
      case 'need':
        this.#needs.push(msg);
        this.poke();
        return;
      case 'error':
        this.#ctx.log('mirror-error', { mirror: this.id, code: msg.code, message: msg.message });
        return;
      default:
        throw new AgentError('ERR_PROTOCOL', `unexpected ${msg.type} from a mirror`);
    }
  }

  #start(hello: HelloMessage): void {
    const ctx = this.#ctx;
    if (hello.folder !== undefined && hello.folder !== ctx.folderId) {
      // Its epoch belongs to another folder's history: it neither fences us nor follows us.
      const message = `${hello.nodeId} holds folder ${hello.folder}, not ${ctx.folderId} served here`;
      ctx.refused(this.#remote, `ERR_FOLDER_ID: ${message}`);
      void this.socket.send({ type: 'error', code: 'ERR_FOLDER_ID', message });
      this.socket.close(4002, `ERR_FOLDER_ID: ${message}`.slice(0, 120));
      return;
    }
    ctx.learnEpoch(hello.epoch, hello.listenUrl ?? null);
    if (ctx.fenced()) {
      void this.socket.send({
        type: 'error',
        code: 'ERR_FENCED',
        message: 'this primary is fenced by a newer epoch',
      });
      this.socket.close(4001, 'ERR_FENCED: this primary is fenced');
      return;
    }
    if (hello.role !== 'mirror') {
      // Another primary asking who we are: our hello (sent on connect) has told it.
      this.socket.close(1000, 'peer probe');
      return;
    }
    this.id = hello.nodeId;
    // Compressed from the message after the welcome (which names the codec) on, both ways.
    this.socket.useCodec(chooseCodec(ctx.wan?.compress === true, availableCodecs(), hello));
    const { tracker, store } = this.#ctx;
    const last = tracker.lastSeq;
    // A fresh mirror (nothing applied, an empty folder) takes the whole journal when it still
    // starts at its first row: the same files as a reconcile, without the manifest and a
    // `need` for each of them.
    const fromStart = hello.fresh === true && hello.appliedSeq === 0 && store.firstSeq() <= 1;
    const canResume =
      (fromStart || (compareEpoch(hello.epoch, ctx.epoch()) === 0 && hello.appliedSeq > 0)) &&
      hello.appliedSeq <= last &&
      hello.appliedSeq >= store.firstSeq() - 1 &&
      last - hello.appliedSeq <= Math.max(10_000, tracker.manifest.size * 2);
    // A reconciling mirror's own sequence means nothing in this epoch until it acks our snapshot.
    this.ackedSeq = canResume ? hello.appliedSeq : 0;
    if (canResume) {
      this.state = 'streaming';
      this.#cursor = hello.appliedSeq + 1;
      this.#ctx.log('mirror-connected', { mirror: this.id, mode: 'resume', from: this.#cursor, to: last });
      void this.socket.send({
        type: 'welcome',
        epoch: this.#ctx.epoch(),
        seq: hello.appliedSeq,
        mode: 'resume',
        ...this.#sends(),
      });
    } else {
      this.state = 'reconcile';
      this.#snapshotSeq = last;
      this.#ctx.log('mirror-connected', {
        mirror: this.id,
        mode: 'reconcile',
        seq: last,
        entries: tracker.manifest.size,
      });
      void this.#sendManifest();
    }
    void this.#pump().catch((err: Error) => {
      this.#ctx.log('send-failed', { mirror: this.id, error: err.message });
      this.socket.close(1011, 'send failed');
    });
  }

  /** What the welcome says this primary sends beyond content, mode, owners and times, and how. */
  #sends(): Pick<WelcomeMessage, 'xattrs' | 'codec'> {
    const xattrs = this.#ctx.tracker.xattrs.announced;
    const codec = this.socket.codec;
    return { ...(xattrs ? { xattrs } : {}), ...(codec ? { codec } : {}) };
  }

  async #sendManifest(): Promise<void> {
    const epoch = this.#ctx.epoch();
    // In path order, so a folder always comes before what is in it: a mirror whose copy has a
    // link where the folder belongs replaces the link before it looks at the folder's files.
    const entries = [...this.#ctx.tracker.manifest.values()].map(toWireEntry);
    entries.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
    const fork = this.#ctx.fork();
    await this.socket.send({
      type: 'welcome',
      epoch,
      seq: this.#snapshotSeq,
      mode: 'reconcile',
      ...(fork ? { fork } : {}),
      ...this.#sends(),
    });
    for (let i = 0; i === 0 || i < entries.length; i += MANIFEST_PAGE) {
      const page = entries.slice(i, i + MANIFEST_PAGE);
      await this.socket.send({
        type: 'manifest',
        epoch,
        entries: page,
        last: i + MANIFEST_PAGE >= entries.length,
      });
    }
  }

  async #pump(): Promise<void> {
    const { store, tracker } = this.#ctx;
    while (this.connected) {
      const need = this.#needs.shift();
      if (need) {
        await this.#sender.serveNeed(need, this.state === 'reconcile' ? this.#snapshotSeq : this.#cursor - 1);
        if (this.#needs.length === 0) await this.#ops.flush();
        continue;
      }
      if (this.state === 'streaming' && this.#cursor <= tracker.lastSeq) {
        const rows = store.readJournal(this.#cursor, JOURNAL_BATCH);
        if (rows.length === 0 || rows[0]!.seq !== this.#cursor) {
          this.socket.close(1000, 'journal no longer reaches back; reconnect to reconcile');
          return;
        }
        for (const row of rows) {
          await this.#sender.sendRow(row);
          this.#cursor = row.seq + 1;
          if (!this.connected || this.#needs.length > 0) break;
        }
        if (this.#needs.length === 0) await this.#ops.flush();
        continue;
      }
      if (this.#signing.due(this.#ops.sentAt, !tracker.busy && this.ackedSeq >= this.#cursor - 1)) {
        // Nothing being journaled and all sent acknowledged: signing takes nothing from a transfer.
        await this.#signing.slice();
        continue;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        if (this.#signing.waiting > 0) setTimeout(resolve, QUIET_MS).unref();
      });
    }
  }
}
