/*
 * link/: how two nodes talk. A PeerSocket (this file) carries wire messages over one WebSocket
 * with bounded send windows and liveness pings, compressing them once both sides agreed on a
 * codec and keeping to the link's bandwidth limits (bandwidth.ts); peer-auth proves the shared
 * token over the hello nonces; auth reads and checks token files; tls-options loads
 * certificates; peer-probe asks another node who it is (its hello) without replicating. Both
 * roles build on these; link/ imports only node/.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import {
  availableCodecs,
  type Codec,
  compressPieces,
  decode,
  type EncodeOptions,
  encodePieces,
  expandMessage,
  type Message,
  MIN_COMPRESS_BYTES,
  NEVER_COMPRESSED,
  type WireLimitsOptions,
  worthCompressing,
} from '@mimic/wire';
import type WebSocket from 'ws';
import type { Pacer, TokenBucket } from './bandwidth.js';

/** The connection under a WebSocket, where this side holds it (a server's accepted socket). */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

export interface PeerSocketOptions {
  limits?: WireLimitsOptions;
  /** What this link's sends pay into (a primary's limits per mirror and in total). */
  pacer?: Pacer | null;
  /** What this link's reading pays into: reading pauses while it is in debt (a mirror's limit). */
  receive?: TokenBucket | null;
}

/** Bytes passed to the socket but not yet handed to the kernel, per connection, before sending waits. */
export const SEND_WINDOW = 8 * 1024 * 1024;
/** Received bytes waiting to be inflated (or behind one that is) before reading pauses. */
const RECEIVE_HIGH = 16 * 1024 * 1024;
/** How long a close waits for the messages queued before it (compressing, or paced). */
const CLOSE_GRACE_MS = 1000;
const PING_EVERY_MS = 5_000;
const SILENT_LIMIT_MS = 15_000;
const MAX_PAUSE_MS = 250;

function frameOverhead(payload: number): number {
  return payload < 126 ? 2 : payload < 65536 ? 4 : 10;
}

function sizeOf(pieces: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

/**
 * One WebSocket carrying mimic messages: encodes and decodes with the wire codec (a decode
 * failure closes the connection with a logged reason), bounds unflushed bytes per connection,
 * counts bytes both ways, and terminates a peer that stops answering pings.
 *
 * Sending: a message goes to the socket at once, unless it is to be compressed, the link is
 * paced, or one queued before it has not left yet; then it waits its turn (compressing
 * meanwhile), so messages always leave in the order they were sent. Paced, a message leaves in
 * fragments of `Pacer.chunkBytes`, each once the link's buckets allow it.
 *
 * Receiving: messages reach `onMessage` in arrival order; a `compressed` one is inflated first
 * (asynchronously, bounded by its raw length), and whatever arrives meanwhile waits behind it.
 */
export class PeerSocket {
  readonly ws: WebSocket;
  bytesSent = 0;
  bytesReceived = 0;
  #inflight = 0;
  #waiters: (() => void)[] = [];
  #alive = true;
  #timer: NodeJS.Timeout;
  #closed = false;
  #closing = false;
  #lastHeard = Date.now();
  readonly #transport: Corkable | null;
  readonly #limits: WireLimitsOptions | undefined;
  readonly #pacer: Pacer | null;
  readonly #receive: TokenBucket | null;
  #codec: Codec | null = null;
  /** The last message queued to leave after those before it; null when none is waiting. */
  #tail: Promise<void> | null = null;
  /** Why reading is paused (the mirror's apply queue, inflating, the receive limit). */
  readonly #holds = new Set<string>();
  #rateTimer: NodeJS.Timeout | null = null;
  #inbox: { msg: Message; bytes: number }[] = [];
  /** The socket closed while the inbox was being handed on: tell the owner once it has been. */
  #afterInbox: (() => void) | null = null;
  #inboxBytes = 0;
  #failed = false;

  /**
   * With `transport`, messages sent in one turn of the event loop leave in one write: thousands
   * of small files would otherwise cost a system call each.
   */
  constructor(
    ws: WebSocket,
    onMessage: (msg: Message) => void,
    onClose: (reason: string) => void,
    transport: Corkable | null = null,
    options: PeerSocketOptions = {},
  ) {
    this.ws = ws;
    this.#transport = transport;
    this.#limits = options.limits;
    this.#pacer = options.pacer ?? null;
    this.#receive = options.receive ?? null;
    ws.binaryType = 'nodebuffer';
    ws.on('pong', () => {
      this.#lastHeard = Date.now();
    });
    // A client's socket: what arrives is metered (and counts as hearing the peer, since its
    // pongs may wait behind megabytes of data while reading is held to a limit). Listened to
    // once ws has its own listener: bytes that came with the upgrade would otherwise be handed
    // to ours alone.
    let upgraded: Socket | null = null;
    ws.on('upgrade', (res: IncomingMessage) => (upgraded = res.socket));
    ws.on('open', () => upgraded && this.#meter(upgraded));
    ws.on('message', (data, isBinary) => this.#arrived(data as Buffer, isBinary, onMessage));
    ws.on('close', (code, reason) => {
      this.#closed = true;
      clearInterval(this.#timer);
      if (this.#rateTimer) clearTimeout(this.#rateTimer);
      this.#release();
      const closed = () => onClose(reason.toString() || `closed (${code})`);
      // What arrived before the close is handed on first, as it would have been uncompressed.
      if (this.#inbox.length > 0 && !this.#failed) this.#afterInbox = closed;
      else closed();
    });
    ws.on('error', () => {}); // 'close' follows and reports
    this.#timer = setInterval(() => {
      if (Date.now() - this.#lastHeard > SILENT_LIMIT_MS) {
        this.#alive = false;
        ws.terminate();
        return;
      }
      // Still connecting (a busy peer has not answered the upgrade yet): nothing to ping.
      if (ws.readyState === ws.OPEN) ws.ping();
    }, PING_EVERY_MS);
    this.#timer.unref();
  }

  get open(): boolean {
    return !this.#closed && this.#alive;
  }

  /** The codec this link compresses with, as its welcome agreed; null: none. */
  get codec(): Codec | null {
    return this.#codec;
  }

  /** Compresses from now on with `codec` what is worth it, and accepts messages compressed so. */
  useCodec(codec: Codec | null): void {
    this.#codec = codec !== null && availableCodecs().includes(codec) ? codec : null;
  }

  /**
   * The codec a primary's welcome named: used from now on when it is one we `offered`; else
   * the connection is refused (false).
   */
  agree(codec: Codec | undefined, offered: readonly string[] | undefined): boolean {
    if (codec === undefined) return true;
    if (offered?.includes(codec) && availableCodecs().includes(codec)) {
      this.#codec = codec;
      return true;
    }
    this.close(1008, `ERR_PROTOCOL: the welcome names ${codec}, which this node did not offer`);
    return false;
  }

  /** Pauses reading for `reason` until it is released (and no other reason holds). */
  hold(reason: string): void {
    if (this.#holds.size === 0) this.ws.pause();
    this.#holds.add(reason);
  }

  release(reason: string): void {
    if (this.#holds.delete(reason) && this.#holds.size === 0) this.ws.resume();
  }

  /** Sends one message; resolves when the connection's window has room for more. */
  async send(msg: Message, options?: EncodeOptions): Promise<void> {
    if (this.#closed || this.#closing) return;
    // Each file content of 4 KiB or more goes out as a fragment of its own, without a copy.
    const pieces = encodePieces(msg, this.#limits, options);
    const raw = sizeOf(pieces);
    // Judged here, in microseconds: what would not shrink keeps the direct path.
    const worth =
      this.#codec !== null &&
      raw >= MIN_COMPRESS_BYTES &&
      !NEVER_COMPRESSED.has(msg.type) &&
      worthCompressing(pieces);
    const codec = worth ? this.#codec : null;
    if (codec === null && this.#tail === null && !this.#pacer?.limited) this.#write(pieces, true);
    else this.#enqueue(pieces, raw, codec);
    while (this.#inflight >= SEND_WINDOW && !this.#closed) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** A message that leaves after those queued before it: compressed meanwhile, then paced. */
  #enqueue(pieces: Uint8Array[], raw: number, codec: Codec | null): void {
    // Held against the window until it is written, so a sender cannot queue without bound.
    this.#inflight += raw;
    const packed = codec
      ? compressPieces(pieces, codec, this.#limits, { sampled: true }).catch(() => null)
      : null;
    const before = this.#tail;
    const mine = (async () => {
      try {
        const out = (packed ? await packed : null) ?? pieces;
        await before;
        this.#inflight -= raw;
        if (!this.#closed) await this.#paced(out);
      } catch (err) {
        this.close(1011, `ERR_INTERNAL: sending failed: ${(err as Error).message}`);
      } finally {
        if (this.#inflight < SEND_WINDOW) this.#release();
      }
    })();
    this.#tail = mine;
    void mine.then(() => {
      if (this.#tail === mine) this.#tail = null;
    });
  }

  /** One message, in fragments its pacer lets go one by one (at once without a limit). */
  async #paced(pieces: Uint8Array[]): Promise<void> {
    const pacer = this.#pacer;
    if (!pacer?.limited) return this.#write(pieces, true);
    const chunk = pacer.chunkBytes;
    const last = pieces.length - 1;
    for (let i = 0; i <= last; i++) {
      const p = pieces[i]!;
      for (let at = 0; at < p.length || at === 0; at += chunk) {
        const fragment = p.subarray(at, at + chunk);
        await pacer.take(fragment.length + frameOverhead(fragment.length));
        if (this.#closed) return;
        this.#write([fragment], i === last && at + chunk >= p.length);
      }
    }
  }

  /** Hands pieces to the socket as fragments of one message; `fin` ends it. */
  #write(pieces: Uint8Array[], fin: boolean): void {
    let wire = 0;
    for (const p of pieces) wire += p.length + frameOverhead(p.length);
    this.bytesSent += wire;
    this.#inflight += wire;
    const sent = () => {
      // The kernel took them: the peer is reading, even if its pongs wait behind our data.
      this.#lastHeard = Date.now();
      this.#inflight -= wire;
      if (this.#inflight < SEND_WINDOW) this.#release();
    };
    const transport = this.#transport;
    if (transport) {
      // Released once this turn's promise callbacks are done (a sender waiting for the window
      // is too): by then every message of the turn is queued behind this one.
      transport.cork();
      process.nextTick(() => transport.uncork());
    }
    const lastAt = pieces.length - 1;
    for (let i = 0; i < lastAt; i++) this.ws.send(pieces[i]!, { binary: true, fin: false });
    this.ws.send(pieces[lastAt]!, { binary: true, fin }, sent);
  }

  #arrived(bytes: Buffer, isBinary: boolean, onMessage: (msg: Message) => void): void {
    this.#lastHeard = Date.now();
    this.bytesReceived += bytes.length + frameOverhead(bytes.length);
    if (this.#failed) return;
    if (!isBinary) {
      this.#refuse('text frames are not part of the protocol', 1003);
      return;
    }
    let msg: Message;
    try {
      msg = decode(bytes, this.#limits);
    } catch (err) {
      this.#refuse(err);
      return;
    }
    if (msg.type === 'compressed' && msg.codec !== this.#codec) {
      const agreed = this.#codec ? `${this.#codec} was agreed` : 'no compression was agreed';
      this.#refuse(`ERR_PROTOCOL: a ${msg.codec} message, but ${agreed}`);
      return;
    }
    if (this.#inbox.length === 0 && msg.type !== 'compressed') {
      onMessage(msg);
      return;
    }
    this.#inbox.push({ msg, bytes: bytes.length });
    this.#inboxBytes += bytes.length;
    if (this.#inboxBytes > RECEIVE_HIGH) this.hold('inflate');
    if (this.#inbox.length === 1) void this.#inflate(onMessage);
  }

  /** Hands the inbox on in order, inflating each compressed message as its turn comes. */
  async #inflate(onMessage: (msg: Message) => void): Promise<void> {
    while (this.#inbox.length > 0 && !this.#failed) {
      const head = this.#inbox[0]!;
      let msg = head.msg;
      if (msg.type === 'compressed') {
        try {
          msg = await expandMessage(msg, this.#limits);
        } catch (err) {
          this.#refuse(err);
          break;
        }
        if (this.#inbox[0] !== head) break; // refused meanwhile
      }
      this.#inbox.shift();
      this.#inboxBytes -= head.bytes;
      if (this.#inboxBytes <= RECEIVE_HIGH / 2) this.release('inflate');
      onMessage(msg);
    }
    const closed = this.#afterInbox;
    this.#afterInbox = null;
    closed?.();
  }

  /** A message that cannot be taken ends the connection; nothing after it is handed on. */
  #refuse(err: unknown, code = 1008): void {
    this.#failed = true;
    this.#inbox = [];
    const e = (typeof err === 'string' ? { message: err } : err) as { code?: string; message?: string };
    const why = typeof err === 'string' ? err : `${e.code ?? 'ERR_DECODE'}: ${e.message ?? 'bad message'}`;
    this.close(code, why.slice(0, 120));
  }

  /** Counts what the socket reads and, while the receive limit is in debt, stops reading. */
  #meter(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#lastHeard = Date.now();
      const bucket = this.#receive;
      if (!bucket || bucket.rate === null || bucket.charge(chunk.length) === 0 || this.#rateTimer) return;
      this.hold('bwlimit');
      const check = () => {
        const ms = this.#receive?.wait() ?? 0;
        if (ms > 0) this.#rateTimer = setTimeout(check, Math.min(Math.ceil(ms), MAX_PAUSE_MS));
        else {
          this.#rateTimer = null;
          this.release('bwlimit');
        }
      };
      check();
    });
  }

  #release(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const r of w) r();
  }

  /** Closes once what was sent before has left (at most CLOSE_GRACE_MS later). */
  close(code = 1000, reason = ''): void {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    let done = false;
    const now = () => {
      if (done || this.#closed) return;
      done = true;
      this.ws.close(code, reason.slice(0, 120));
      setTimeout(() => this.ws.terminate(), 2000).unref();
    };
    const tail = this.#tail;
    if (!tail) {
      now();
      return;
    }
    const timer = setTimeout(now, CLOSE_GRACE_MS);
    timer.unref();
    void tail.then(() => {
      clearTimeout(timer);
      now();
    });
  }
}
