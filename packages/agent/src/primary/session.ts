import { join } from 'node:path';
import { decodeSignature, encodeSignature, hashToHex, signature } from '@mimic/delta';
import {
  checkHello,
  compareEpoch,
  type Epoch,
  type HelloMessage,
  type ManifestEntry,
  type Message,
  type NeedMessage,
  type Op,
} from '@mimic/wire';
import type WebSocket from 'ws';
import { PeerAuth } from '../link/peer-auth.js';
import { type Corkable, PeerSocket } from '../link/peer-socket.js';
import { AgentError } from '../node/errors.js';
import { readFileVersion } from '../node/local-fs.js';
import type { FileRecord, JournalOp, JournalRow, Store } from '../node/store.js';
import type { ChangeTracker } from './change-tracker.js';
import { PART_BYTES, type WriteSource, wholePart, writeParts } from './write-parts.js';

/*
 * The primary's side of one mirror connection.
 *
 *   hello      both sides send hello; the mirror's says which epoch and sequence it applied
 *   reconcile  (fresh mirror, or journal no longer reaching back) the primary sends its
 *              manifest as of sequence S; the mirror asks for what differs with `need`, each
 *              answered by one op at sequence S; the mirror's ack of S ends the phase
 *   streaming  journal rows from the cursor, within the socket's send window; acks move
 *              `ackedSeq`. Needs that arrive later are answered first.
 */

export interface LinkContext {
  readonly nodeId: string;
  /** The folder this primary serves: a mirror holding another one is refused. */
  readonly folderId: string;
  readonly root: string;
  readonly store: Store;
  readonly tracker: ChangeTracker;
  epoch(): Epoch;
  /** This primary's hello (its epoch and role as they are now). */
  hello(): HelloMessage;
  /** Where this primary's epoch forked from its predecessor, if it was promoted. */
  fork(): { epoch: Epoch; seq: number } | undefined;
  fenced(): boolean;
  /** Shared token; null when peers are not authenticated. */
  readonly token: Uint8Array | null;
  /** Logs a refused peer (rate-limited). */
  refused(remote: string, reason: string): void;
  /** A peer's hello carried this epoch (and maybe its URL). */
  learnEpoch(epoch: Epoch, url: string | null): void;
  log(event: string, fields: Record<string, unknown>): void;
  onAck(link: MirrorLink): void;
  onClose(link: MirrorLink): void;
}

type State = 'hello' | 'auth' | 'reconcile' | 'streaming' | 'closed';

const HELLO_TIMEOUT_MS = 10_000;
const MANIFEST_PAGE = 1000;
const JOURNAL_BATCH = 256;
/** Files are signed after the sender has sent nothing for this long, in slices this long. */
const QUIET_MS = 100;
const SIGN_SLICE_MS = 20;
/** Most content held for signing later; past it, versions waiting are re-read when signed. */
const MAX_TO_SIGN_BYTES = 32 * 1024 * 1024;
/** Most versions waiting to be signed; past it, a file's next change travels whole. */
const MAX_TO_SIGN = 200_000;
/**
 * Small ops leave together in one `ops` message of at most this many ops and bytes of content:
 * one message per file cost each side as much as the file itself, for a tree of small files.
 */
const BATCH_OPS = 256;
const BATCH_BYTES = 1024 * 1024;
/** Whole files up to this size join a batch; larger ones go alone, their content not copied. */
const BATCH_FILE_BYTES = 64 * 1024;

/** In `#held`: the mirror's copy is not known (its next version travels whole). */
const UNKNOWN = '';

function toWireEntry(r: FileRecord): ManifestEntry {
  const e: ManifestEntry = { path: r.path, kind: r.kind, size: r.size, mtimeMs: r.mtimeMs, mode: r.mode };
  if (r.hash !== undefined) e.hash = r.hash;
  if (r.target !== undefined) e.target = r.target;
  return e;
}

export class MirrorLink {
  readonly socket: PeerSocket;
  id = '';
  ackedSeq = 0;
  state: State = 'hello';
  readonly #ctx: LinkContext;
  #cursor = 0;
  #snapshotSeq = 0;
  #needs: NeedMessage[] = [];
  #auth: PeerAuth;
  #peer: HelloMessage | null = null;
  readonly #remote: string;
  /**
   * Content hash of each file as this connection last sent it: what the mirror holds. UNKNOWN
   * where a send was cut short and the mirror's copy, if any, is not known here.
   */
  #held = new Map<string, string>();
  #wake: (() => void) | null = null;
  /**
   * Versions sent whole and not signed yet, by hash: their content, or the path to read it from.
   * Signed when the link is quiet, or at once when the next change of the file needs it.
   */
  #toSign = new Map<string, Uint8Array | string>();
  #toSignBytes = 0;
  #sentAt = 0;
  /** Ops waiting to leave in one message (see #sendOp); sent before anything else is. */
  #batch: { seqs: number[]; ops: Op[]; bytes: number } = { seqs: [], ops: [], bytes: 0 };

  constructor(ws: WebSocket, ctx: LinkContext, remote: string, transport: Corkable | null = null) {
    this.#ctx = ctx;
    this.#remote = remote;
    this.socket = new PeerSocket(
      ws,
      (m) => this.#onMessage(m),
      (reason) => this.#onClose(reason),
      transport,
    );
    const timer = setTimeout(() => {
      if (this.state === 'hello' || this.state === 'auth') {
        this.socket.close(1008, 'ERR_HANDSHAKE_TIMEOUT: no hello and proof in time');
      }
    }, HELLO_TIMEOUT_MS);
    timer.unref();
    this.#auth = new PeerAuth(ctx.token, ctx.nodeId);
    void this.socket.send({ ...ctx.hello(), nonce: this.#auth.nonce });
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
    if (this.state === 'hello') {
      if (msg.type !== 'hello') throw new AgentError('ERR_PROTOCOL', `expected hello, got ${msg.type}`);
      const hello = checkHello(msg, undefined, this.#ctx.nodeId);
      if (!this.#auth.required) {
        this.#start(hello);
        return;
      }
      this.#peer = hello;
      this.state = 'auth';
      void this.socket.send(this.#auth.proofFor(hello));
      return;
    }
    if (this.state === 'auth') {
      if (msg.type !== 'auth' || !this.#auth.verify(this.#peer!, msg)) {
        this.#ctx.refused(this.#remote, msg.type === 'auth' ? 'wrong token' : 'no proof of the token');
        this.socket.close(4003, 'ERR_AUTH: authentication failed');
        return;
      }
      this.#start(this.#peer!);
      return;
    }
    if ((msg.type === 'ack' || msg.type === 'need') && compareEpoch(msg.epoch, this.#ctx.epoch()) !== 0) {
      // From a mirror still in another epoch: refused, never counted.
      throw Object.assign(
        new Error(`${msg.type} for epoch ${msg.epoch.term}, not ${this.#ctx.epoch().term}`),
        {
          code: 'ERR_EPOCH',
        },
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
        await this.#serveNeed(need);
        if (this.#needs.length === 0) await this.#flush();
        continue;
      }
      if (this.state === 'streaming' && this.#cursor <= tracker.lastSeq) {
        const rows = store.readJournal(this.#cursor, JOURNAL_BATCH);
        if (rows.length === 0 || rows[0]!.seq !== this.#cursor) {
          this.socket.close(1000, 'journal no longer reaches back; reconnect to reconcile');
          return;
        }
        for (const row of rows) {
          await this.#sendRow(row);
          this.#cursor = row.seq + 1;
          if (!this.connected || this.#needs.length > 0) break;
        }
        if (this.#needs.length === 0) await this.#flush();
        continue;
      }
      if (this.#toSign.size > 0 && this.#quiet()) {
        await this.#signSome();
        continue;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        if (this.#toSign.size > 0) setTimeout(resolve, QUIET_MS).unref();
      });
    }
  }

  /**
   * Nothing sent for QUIET_MS, nothing being journaled and the mirror has acknowledged all it
   * was sent: signing then takes no CPU from a transfer (an initial sync signs at its end).
   */
  #quiet(): boolean {
    return (
      Date.now() - this.#sentAt >= QUIET_MS && !this.#ctx.tracker.busy && this.ackedSeq >= this.#cursor - 1
    );
  }

  /**
   * Signs some of the files sent without a signature (for the deltas of their next change),
   * for at most SIGN_SLICE_MS, so that new work never waits long behind it.
   */
  async #signSome(): Promise<void> {
    const until = Date.now() + SIGN_SLICE_MS;
    for (const hash of this.#toSign.keys()) {
      await this.#signNow(hash);
      if (Date.now() >= until) return;
    }
  }

  /**
   * The signature of a version sent and not yet signed, made and kept now; undefined if none is
   * waiting, or if the file no longer holds that version (its next change then travels whole).
   */
  async #signNow(hash: string): Promise<Uint8Array | undefined> {
    const held = this.#toSign.get(hash);
    if (held === undefined) return undefined;
    this.#toSign.delete(hash);
    if (typeof held !== 'string') this.#toSignBytes -= held.length;
    const store = this.#ctx.store;
    const known = store.getSignature(hash);
    if (known) return known;
    let content: Uint8Array | undefined;
    if (typeof held === 'string') {
      const v = await readFileVersion(join(this.#ctx.root, held), PART_BYTES);
      if (v?.hash === hash) content = v.content;
    } else content = held;
    if (!content) return undefined;
    const sig = encodeSignature(signature(content));
    store.putSignature(hash, sig);
    return sig;
  }

  /** Where write-parts hands the signatures (or the content to sign later) of what it sent. */
  readonly #signer: NonNullable<WriteSource['sign']> = {
    later: (path, hash, content) => this.#signLater(path, hash, content),
    keep: (hash, signature) => this.#ctx.store.putSignature(hash, signature),
  };

  /** Remembers a version sent whole for signing later: its content while that fits, else its path. */
  #signLater(path: string, hash: string, content: Uint8Array): void {
    if (this.#toSign.has(hash) || this.#toSign.size >= MAX_TO_SIGN) return;
    if (this.#toSignBytes + content.length <= MAX_TO_SIGN_BYTES) {
      this.#toSign.set(hash, content);
      this.#toSignBytes += content.length;
    } else {
      this.#toSign.set(hash, path);
    }
  }

  /** Sends one op, or adds it to the batch (small ops); anything else sends the batch first. */
  async #sendOp(seq: number, op: Op): Promise<void> {
    this.#sentAt = Date.now();
    const small = op.kind !== 'write' || (op.part === 0 && op.last && op.data.length <= BATCH_FILE_BYTES);
    if (small) {
      const b = this.#batch;
      b.seqs.push(seq);
      b.ops.push(op);
      b.bytes += op.kind === 'write' ? op.data.length : 0;
      if (b.ops.length >= BATCH_OPS || b.bytes >= BATCH_BYTES) await this.#flush();
      return;
    }
    await this.#flush();
    // Built from the journal and manifest, whose paths were checked on the way in.
    await this.socket.send({ type: 'op', epoch: this.#ctx.epoch(), seq, op }, { trusted: true });
  }

  /** Sends the batched ops. */
  async #flush(): Promise<void> {
    const { seqs, ops } = this.#batch;
    if (ops.length === 0) return;
    this.#batch = { seqs: [], ops: [], bytes: 0 };
    const epoch = this.#ctx.epoch();
    if (ops.length === 1)
      await this.socket.send({ type: 'op', epoch, seq: seqs[0]!, op: ops[0]! }, { trusted: true });
    else await this.socket.send({ type: 'ops', epoch, seqs, ops }, { trusted: true });
  }

  async #sendRow(row: JournalRow): Promise<void> {
    const op = row.op;
    if (op.kind !== 'write') {
      this.#track(op);
      await this.#sendOp(row.seq, op as Op);
      return;
    }
    // Files are sent as they are now, not as they were when journaled: a later row for the
    // same path then finds the mirror already holding that content and sends only metadata.
    const rec = this.#ctx.tracker.manifest.get(op.path);
    if (rec?.kind !== 'file') {
      // Gone or no longer a file: whatever the mirror held there is not what we know now.
      this.#held.delete(op.path);
      if (!rec) return this.#sendOp(row.seq, { kind: 'delete', path: op.path });
    }
    if (rec.kind !== 'file' || this.#held.get(op.path) === rec.hash) {
      if (rec.hash) this.#ctx.tracker.recent.discard(op.path, rec.hash);
      return this.#sendOp(row.seq, { kind: 'meta', path: op.path, mode: rec.mode, mtimeMs: rec.mtimeMs });
    }
    const held = this.#held.get(op.path);
    // Nothing sent on this connection yet: the mirror holds the journal's previous version.
    const baseHash = held === undefined ? op.prevHash : held === UNKNOWN ? undefined : held;
    const sig = baseHash
      ? (this.#ctx.store.getSignature(baseHash) ?? (await this.#signNow(baseHash)))
      : undefined;
    await this.#sendWrite(row.seq, rec, baseHash && sig ? { hash: baseHash, signature: sig } : undefined);
  }

  /** Keeps `#held` in step with deletes and renames sent to the mirror. */
  #track(op: JournalOp): void {
    if (op.kind !== 'delete' && op.kind !== 'rename') return;
    // The new name now holds whatever the mirror had at the old one, which may be unknown here.
    if (op.kind === 'rename') this.#held.delete(op.to);
    const from = op.kind === 'delete' ? op.path : op.from;
    const hash = this.#held.get(from);
    if (hash !== undefined) {
      // A file: nothing is held below it, so there is no need to look through them all.
      this.#held.delete(from);
      if (op.kind === 'rename') this.#held.set(op.to, hash);
      return;
    }
    const prefix = `${from}/`;
    for (const [path, h] of [...this.#held]) {
      if (!path.startsWith(prefix)) continue;
      this.#held.delete(path);
      if (op.kind === 'rename') this.#held.set(op.to + path.slice(from.length), h);
    }
  }

  async #sendWrite(
    seq: number,
    rec: FileRecord,
    base?: { hash: string; signature: Uint8Array },
  ): Promise<void> {
    const recent = this.#ctx.tracker.recent;
    if (base) recent.discard(rec.path, rec.hash!);
    else {
      const content = recent.take(rec.path, rec.hash!);
      if (content) {
        const whole = wholePart(rec, rec.hash!, content, this.#signer);
        await this.#sendOp(seq, whole);
        if (this.connected) this.#held.set(rec.path, whole.hash);
        return;
      }
    }
    return this.#sendParts(seq, {
      abs: join(this.#ctx.root, rec.path),
      path: rec.path,
      mode: rec.mode,
      mtimeMs: rec.mtimeMs,
      size: rec.size,
      hash: rec.hash!,
      sign: this.#signer,
      ...(base ? { base } : {}),
    });
  }

  /** A file read now, in one part or several: whole, or as a delta against `src.base`. */
  async #sendParts(seq: number, src: WriteSource): Promise<void> {
    try {
      for await (const part of writeParts(src)) {
        await this.#sendOp(seq, part);
        if (!this.connected) return;
        if (part.last && !part.abort) this.#held.set(src.path, part.hash);
        // Torn: the mirror kept what it had, which the journal's previous version may not be.
        else if (part.last && !this.#held.has(src.path)) this.#held.set(src.path, UNKNOWN);
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EISDIR' && code !== 'ENOTDIR') throw err;
      // Gone since: the journal has (or will have) its delete; tell the mirror now.
      this.#held.delete(src.path);
      await this.#sendOp(seq, { kind: 'delete', path: src.path });
    }
  }

  async #serveNeed(need: NeedMessage): Promise<void> {
    const seq = this.state === 'reconcile' ? this.#snapshotSeq : this.#cursor - 1;
    const rec = this.#ctx.tracker.manifest.get(need.path);
    if (!rec) return this.#sendOp(seq, { kind: 'delete', path: need.path });
    if (rec.kind === 'dir')
      return this.#sendOp(seq, { kind: 'mkdir', path: rec.path, mode: rec.mode, mtimeMs: rec.mtimeMs });
    if (rec.kind === 'symlink')
      return this.#sendOp(seq, {
        kind: 'symlink',
        path: rec.path,
        target: rec.target!,
        mtimeMs: rec.mtimeMs,
      });
    let base: { hash: string; signature: Uint8Array } | undefined;
    if (need.signature) {
      const sig = decodeSignature(need.signature); // a bad one throws and closes this connection
      base = { hash: hashToHex(sig.fileHash), signature: need.signature };
    }
    await this.#sendWrite(seq, rec, base);
  }
}
