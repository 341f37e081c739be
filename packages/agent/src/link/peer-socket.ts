/*
 * link/: how two nodes talk. A PeerSocket (this file) carries wire messages over one WebSocket
 * with bounded send windows and liveness pings; peer-auth proves the shared token over the
 * hello nonces; auth reads and checks token files; tls-options loads certificates; peer-probe
 * asks another node who it is (its hello) without replicating. Both roles build on these; link/
 * imports only node/.
 */
import { decode, type EncodeOptions, encodePieces, type Message, type WireLimitsOptions } from '@mimic/wire';
import type WebSocket from 'ws';

/** The connection under a WebSocket, where this side holds it (a server's accepted socket). */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/** Bytes passed to the socket but not yet handed to the kernel, per connection, before sending waits. */
export const SEND_WINDOW = 8 * 1024 * 1024;
const PING_EVERY_MS = 5_000;
const SILENT_LIMIT_MS = 15_000;

function frameOverhead(payload: number): number {
  return payload < 126 ? 2 : payload < 65536 ? 4 : 10;
}

/**
 * One WebSocket carrying mimic messages: encodes and decodes with the wire codec (a decode
 * failure closes the connection with a logged reason), bounds unflushed bytes per connection,
 * counts bytes both ways, and terminates a peer that stops answering pings.
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
  readonly #transport: Corkable | null;

  /**
   * With `transport`, messages sent in one turn of the event loop leave in one write: thousands
   * of small files would otherwise cost a system call each.
   */
  constructor(
    ws: WebSocket,
    onMessage: (msg: Message) => void,
    onClose: (reason: string) => void,
    transport: Corkable | null = null,
    limits?: WireLimitsOptions,
  ) {
    this.ws = ws;
    this.#transport = transport;
    ws.binaryType = 'nodebuffer';
    let lastHeard = Date.now();
    ws.on('pong', () => {
      lastHeard = Date.now();
    });
    ws.on('message', (data, isBinary) => {
      lastHeard = Date.now();
      const bytes = data as Buffer;
      this.bytesReceived += bytes.length + frameOverhead(bytes.length);
      if (!isBinary) {
        this.close(1003, 'text frames are not part of the protocol');
        return;
      }
      let msg: Message;
      try {
        msg = decode(bytes, limits);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        this.close(1008, `${e.code ?? 'ERR_DECODE'}: ${e.message ?? 'bad message'}`.slice(0, 120));
        return;
      }
      onMessage(msg);
    });
    ws.on('close', (code, reason) => {
      this.#closed = true;
      clearInterval(this.#timer);
      this.#release();
      onClose(reason.toString() || `closed (${code})`);
    });
    ws.on('error', () => {}); // 'close' follows and reports
    this.#timer = setInterval(() => {
      if (Date.now() - lastHeard > SILENT_LIMIT_MS) {
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

  /** Sends one message; resolves when the connection's window has room for more. */
  async send(msg: Message, options?: EncodeOptions): Promise<void> {
    if (this.#closed) return;
    // Each file content of 4 KiB or more goes out as a fragment of its own, without a copy.
    const pieces = encodePieces(msg, undefined, options);
    let wire = 0;
    for (const p of pieces) wire += p.length + frameOverhead(p.length);
    this.bytesSent += wire;
    this.#inflight += wire;
    const sent = () => {
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
    if (pieces.length === 1) this.ws.send(pieces[0]!, sent);
    else {
      const last = pieces.length - 1;
      for (let i = 0; i < last; i++) this.ws.send(pieces[i]!, { binary: true, fin: false });
      this.ws.send(pieces[last]!, { binary: true, fin: true }, sent);
    }
    while (this.#inflight >= SEND_WINDOW && !this.#closed) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  #release(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const r of w) r();
  }

  close(code = 1000, reason = ''): void {
    if (this.#closed) return;
    this.ws.close(code, reason.slice(0, 120));
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }
}
