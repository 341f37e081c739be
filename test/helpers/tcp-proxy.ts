import { createConnection, createServer, type Server, type Socket } from 'node:net';

/*
 * A TCP proxy on 127.0.0.1 for fault tests: a mirror dials the proxy, the proxy dials the
 * primary. Faults it injects:
 *
 *   delay      every chunk is delivered `delayMs` after it arrived, in order (added latency,
 *              both directions), with backpressure passed on
 *   cut        every open connection is reset on both sides at once (`cutAll`), or as soon as
 *              a number of bytes went from the primary to the mirror (`cutAfter`)
 *   refuse     for a while, new connections are accepted and reset straight away
 *
 * Counters say what happened, so a test can check that the fault really struck.
 */

export interface ProxyStats {
  accepted: number;
  refused: number;
  /** Connections reset by `cutAll`/`cutAfter`. */
  cut: number;
  /** Bytes forwarded primary → mirror / mirror → primary. */
  bytesDown: number;
  bytesUp: number;
}

interface Pending {
  chunk: Buffer;
  due: number;
}

/** One direction of one connection: chunks held until due, written in order. */
class Lane {
  readonly #src: Socket;
  readonly #dst: Socket;
  readonly #delay: () => number;
  #queue: Pending[] = [];
  #timer: NodeJS.Timeout | null = null;
  #waitingDrain = false;
  #ended = false;

  constructor(src: Socket, dst: Socket, delay: () => number) {
    this.#src = src;
    this.#dst = dst;
    this.#delay = delay;
    dst.on('drain', () => {
      this.#waitingDrain = false;
      this.#flush();
    });
  }

  push(chunk: Buffer): void {
    this.#queue.push({ chunk, due: Date.now() + this.#delay() });
    this.#flush();
  }

  /** The source ended cleanly: end the destination once everything queued is written. */
  end(): void {
    this.#ended = true;
    this.#flush();
  }

  #flush(): void {
    if (this.#timer || this.#waitingDrain || this.#dst.destroyed) return;
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const wait = head.due - Date.now();
      if (wait > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#flush();
        }, wait);
        return;
      }
      this.#queue.shift();
      if (!this.#dst.write(head.chunk)) {
        this.#waitingDrain = true;
        this.#src.pause();
        return;
      }
    }
    if (this.#ended) this.#dst.end();
    else this.#src.resume();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue = [];
  }
}

interface Pair {
  client: Socket;
  upstream: Socket;
  lanes: Lane[];
}

export class TcpProxy {
  readonly port: number;
  readonly stats: ProxyStats = { accepted: 0, refused: 0, cut: 0, bytesDown: 0, bytesUp: 0 };
  delayMs = 0;
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  #refuseUntil = 0;
  #trip: { left: number; done: () => void } | null = null;

  private constructor(server: Server, port: number, target: { host: string; port: number }) {
    this.#server = server;
    this.port = port;
    this.#target = target;
    server.on('connection', (client) => this.#accept(client));
  }

  /** Listens on 127.0.0.1 on a free port, forwarding to `target`. */
  static async start(target: { host?: string; port: number }): Promise<TcpProxy> {
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('proxy: no port');
    return new TcpProxy(server, addr.port, { host: target.host ?? '127.0.0.1', port: target.port });
  }

  /** The proxy's address as a mimic peer URL. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get openConnections(): number {
    return this.#pairs.size;
  }

  /** Resets every open connection on both sides; returns how many there were. */
  cutAll(): number {
    const n = this.#pairs.size;
    for (const pair of [...this.#pairs]) this.#drop(pair);
    this.stats.cut += n;
    return n;
  }

  /**
   * Cuts every connection as soon as `bytes` more bytes have gone from the primary to the
   * mirror (counted on arrival at the proxy; the chunk that crosses the mark is dropped).
   * Resolves once it struck.
   */
  cutAfter(bytes: number): Promise<void> {
    return new Promise((resolve) => {
      this.#trip = { left: bytes, done: resolve };
    });
  }

  /** New connections are reset on arrival for the next `ms` milliseconds. */
  refuseFor(ms: number): void {
    this.#refuseUntil = Date.now() + ms;
  }

  async close(): Promise<void> {
    this.#trip = null;
    for (const pair of [...this.#pairs]) this.#drop(pair);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    client.on('error', () => {});
    if (Date.now() < this.#refuseUntil) {
      this.stats.refused++;
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted++;
    client.pause();
    const upstream = createConnection({ ...this.#target, allowHalfOpen: true });
    upstream.on('error', () => {});
    const pair: Pair = { client, upstream, lanes: [] };
    this.#pairs.add(pair);
    const down = new Lane(upstream, client, () => this.delayMs);
    const up = new Lane(client, upstream, () => this.delayMs);
    pair.lanes.push(down, up);
    upstream.on('connect', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      const trip = this.#trip;
      if (trip) {
        trip.left -= chunk.length;
        if (trip.left <= 0) {
          this.#trip = null;
          this.cutAll();
          trip.done();
          return;
        }
      }
      this.stats.bytesDown += chunk.length;
      down.push(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      this.stats.bytesUp += chunk.length;
      up.push(chunk);
    });
    // A clean end is passed on after what came before it; an error on either side resets both.
    upstream.on('end', () => down.end());
    client.on('end', () => up.end());
    const onClose = (hadError: boolean) => {
      if (hadError) this.#drop(pair);
      else if (client.destroyed && upstream.destroyed) this.#pairs.delete(pair);
    };
    upstream.on('close', onClose);
    client.on('close', onClose);
  }

  #drop(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    for (const lane of pair.lanes) lane.stop();
    pair.client.resetAndDestroy();
    pair.upstream.resetAndDestroy();
  }
}
