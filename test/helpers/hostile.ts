import { lstat, readdir, readlink } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { contentHash } from '@mimic/delta';
import { decode, type Epoch, type HelloMessage, type Message, makeHello } from '@mimic/wire';
import { Packr } from 'msgpackr';
import WebSocket, { WebSocketServer } from 'ws';
import { fileHashUncached } from './tree-snapshot.js';

/*
 * A fake primary that speaks just enough of the protocol to get a real mirror streaming, then
 * sends whatever a test likes, valid or not.
 *
 * Per connection (a HostileSession):
 *   open       our hello goes out at once
 *   handshake  read the mirror's hello; a mirror that applied something gets `welcome` resume
 *              at its sequence; a fresh one (appliedSeq 0) gets `welcome` reconcile at our
 *              sequence, one empty final manifest page, and we wait for its ack of that sequence
 *   streaming  the test sends ops and raw frames; `settle` waits for an ack, a close or a quiet
 *              period, and says which came first
 *
 * Ops and messages are packed with msgpackr directly, never through the wire `encode`, so that
 * nothing here is validated before the mirror sees it.
 */

export const EVIL_EPOCH: Epoch = Object.freeze({ term: 1, node: 'evil' }) as Epoch;
/** The folder the fake primary claims to serve (a new mirror adopts it). */
export const EVIL_FOLDER = 'e'.repeat(32);

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
});

/** One msgpack value, unchecked. */
export function rawPack(value: unknown): Uint8Array {
  return packr.pack(value);
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** Who sent the first close frame (or cut the connection). */
  by: 'mirror' | 'us';
}

export type Outcome =
  | { kind: 'acked'; seq: number }
  | ({ kind: 'closed' } & CloseInfo)
  | { kind: 'still-open' };

export interface WriteOptions {
  /** Marks the last part torn: the mirror must keep what it holds. */
  abort?: boolean;
  mode?: number;
  mtimeMs?: number;
  /** Bytes per part (default: the whole content in one part). */
  partSize?: number;
  /** Hash announced for the whole file (default: the real one). */
  hash?: string;
  /** Size announced for the whole file (default: the real one). */
  size?: number;
}

/** The plain op objects of a full write of `content` to `path`, in parts, all unchecked. */
export function writeParts(path: string, content: string | Uint8Array, o: WriteOptions = {}): object[] {
  const data = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  const partSize = Math.max(1, o.partSize ?? Math.max(1, data.length));
  const head = {
    kind: 'write',
    path,
    mode: o.mode ?? 0o644,
    mtimeMs: o.mtimeMs ?? 1_700_000_000_000,
    size: o.size ?? data.length,
    hash: o.hash ?? contentHash(data),
    encoding: 'full',
  };
  const parts: object[] = [];
  let part = 0;
  for (let at = 0; at < data.length || part === 0; at += partSize) {
    const end = Math.min(data.length, at + partSize);
    const last = end >= data.length;
    parts.push({
      ...head,
      part,
      last,
      data: data.subarray(at, end),
      ...(last && o.abort ? { abort: true } : {}),
    });
    part++;
  }
  return parts;
}

/** One connection from the mirror. */
export class HostileSession {
  readonly primary: HostilePrimary;
  readonly ws: WebSocket;
  readonly closed: Promise<CloseInfo>;
  mirrorHello: HelloMessage | null = null;
  mode: 'resume' | 'reconcile' | null = null;
  /** Every message the mirror sent, decoded. */
  readonly received: Message[] = [];
  #ending = false;
  #isClosed = false;
  #wake: (() => void)[] = [];

  constructor(primary: HostilePrimary, ws: WebSocket) {
    this.primary = primary;
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('error', () => {}); // 'close' follows
    ws.on('message', (data) => {
      try {
        this.received.push(decode(data as Buffer));
      } catch {
        // Nothing the mirror sends should fail to decode; tests look at `received` if it matters.
      }
      this.#notify();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.#isClosed = true;
        resolve({ code, reason: reason.toString(), by: this.#ending ? 'us' : 'mirror' });
        this.#notify();
      });
    });
    // Our hello goes first, before the mirror's is read.
    this.send(
      makeHello({
        nodeId: 'evil-primary',
        role: 'primary',
        epoch: EVIL_EPOCH,
        appliedSeq: primary.seq,
        folder: EVIL_FOLDER,
      }),
    );
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = [];
    for (const f of w) f();
  }

  /** Waits until `pick` returns something, the connection closes (null) or `timeoutMs` passes (null). */
  async #until<T>(pick: () => T | undefined, timeoutMs: number): Promise<T | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = pick();
      if (found !== undefined) return found;
      if (this.#isClosed) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Packs `value` as it is and sends it as one binary frame. */
  send(value: unknown): void {
    this.sendBytes(rawPack(value));
  }

  /** Sends bytes as one frame, binary unless told otherwise. */
  sendBytes(bytes: Uint8Array | string, { binary = true }: { binary?: boolean } = {}): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(bytes, { binary }, () => {});
  }

  /** Sends one op with the next sequence number; returns that number. */
  op(op: object, epoch: Epoch = EVIL_EPOCH): number {
    const seq = ++this.primary.seq;
    this.send({ type: 'op', epoch, seq, op });
    return seq;
  }

  /** Sends a whole file as write parts under one sequence number; returns it. */
  write(path: string, content: string | Uint8Array, o: WriteOptions = {}): number {
    const seq = ++this.primary.seq;
    for (const op of writeParts(path, content, o)) this.send({ type: 'op', epoch: EVIL_EPOCH, seq, op });
    return seq;
  }

  /**
   * Reads the mirror's hello and answers it: resume at its sequence when it applied something,
   * otherwise reconcile against an empty manifest and wait for the ack that ends it.
   */
  async handshake(timeoutMs = 10_000): Promise<void> {
    const hello = await this.#until(
      () => this.received.find((m): m is HelloMessage => m.type === 'hello'),
      timeoutMs,
    );
    if (!hello) throw new Error(`no hello from the mirror (${this.isClosed ? 'closed' : 'timed out'})`);
    this.mirrorHello = hello;
    if (hello.appliedSeq > 0) {
      this.mode = 'resume';
      this.primary.seq = Math.max(this.primary.seq, hello.appliedSeq);
      this.send({ type: 'welcome', epoch: EVIL_EPOCH, seq: hello.appliedSeq, mode: 'resume' });
      return;
    }
    this.mode = 'reconcile';
    const seq = this.primary.seq;
    this.send({ type: 'welcome', epoch: EVIL_EPOCH, seq, mode: 'reconcile' });
    this.send({ type: 'manifest', epoch: EVIL_EPOCH, entries: [], last: true });
    if (!(await this.waitAck(seq, timeoutMs))) {
      throw new Error(`the mirror did not ack the reconcile at ${seq}${this.isClosed ? ' (closed)' : ''}`);
    }
  }

  /** The highest sequence the mirror acknowledged on this connection, or -1. */
  get acked(): number {
    let max = -1;
    for (const m of this.received) if (m.type === 'ack' && m.seq > max) max = m.seq;
    return max;
  }

  /** True once the mirror acknowledged `seq` (or later); false on close or timeout. */
  async waitAck(seq: number, timeoutMs = 10_000): Promise<boolean> {
    return (await this.#until(() => (this.acked >= seq ? true : undefined), timeoutMs)) === true;
  }

  /**
   * What the mirror did with what was sent: closed the connection, acknowledged `seq`, or
   * neither within `timeoutMs` (then the connection is still open).
   */
  async settle(seq: number | null, timeoutMs = 5_000): Promise<Outcome> {
    const acked = await this.#until(
      () => (seq !== null && this.acked >= seq ? this.acked : undefined),
      timeoutMs,
    );
    if (this.#isClosed) return { kind: 'closed', ...(await this.closed) };
    if (acked !== null) return { kind: 'acked', seq: acked };
    return { kind: 'still-open' };
  }

  /** Closes from our side (if still open) and waits for the close to complete. */
  async end(code = 1000, reason = 'hostile session over'): Promise<CloseInfo> {
    if (!this.#isClosed) {
      this.#ending = true;
      this.ws.close(code, reason);
      const timer = setTimeout(() => this.ws.terminate(), 2_000);
      await this.closed;
      clearTimeout(timer);
    }
    return this.closed;
  }
}

/** The fake primary: a `ws` server on 127.0.0.1 handing out each connection as a session. */
export class HostilePrimary {
  readonly url: string;
  /** Highest sequence number handed out; ops continue after it across sessions. */
  seq = 0;
  readonly sessions: HostileSession[] = [];
  readonly #wss: WebSocketServer;
  #taken = 0;
  #wake: (() => void) | null = null;

  private constructor(wss: WebSocketServer, url: string) {
    this.#wss = wss;
    this.url = url;
    wss.on('connection', (ws) => {
      this.sessions.push(new HostileSession(this, ws));
      this.#wake?.();
    });
  }

  static async start(): Promise<HostilePrimary> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    const { port } = wss.address() as AddressInfo;
    return new HostilePrimary(wss, `ws://127.0.0.1:${port}`);
  }

  /** The next connection not handed out yet, waiting for it if needed. */
  async nextSession(timeoutMs = 20_000): Promise<HostileSession> {
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.length <= this.#taken) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no connection from the mirror within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
    return this.sessions[this.#taken++]!;
  }

  /** Drops every connection and stops listening. */
  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}

export interface Fingerprint {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  sha256?: string;
  target?: string;
}

/**
 * Every entry below `dir` and `dir` itself (as '.'), with inode, mode, size, nanosecond mtime
 * and ctime, and content hash or link target: a file created and removed again still shows as a
 * changed folder mtime, a chmod as a changed ctime.
 */
export async function fingerprint(dir: string): Promise<Map<string, Fingerprint>> {
  const out = new Map<string, Fingerprint>();
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '.' ? dir : join(dir, rel);
    const st = await lstat(abs, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    const entry: Fingerprint = {
      type,
      mode: Number(st.mode & 0o7777n),
      ino: st.ino,
      size: st.size,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
    };
    // Not the cached hash: a rewrite within one clock tick must show too.
    if (type === 'file') entry.sha256 = await fileHashUncached(abs);
    if (type === 'symlink') entry.target = await readlink(abs);
    out.set(rel, entry);
    if (type === 'dir') {
      for (const name of (await readdir(abs)).sort()) await visit(rel === '.' ? name : `${rel}/${name}`);
    }
  };
  await visit('.');
  return out;
}

/** Human-readable differences between two fingerprints, empty when they are equal. */
export function fingerprintDiff(before: Map<string, Fingerprint>, after: Map<string, Fingerprint>): string[] {
  const lines: string[] = [];
  for (const p of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const a = before.get(p);
    const b = after.get(p);
    if (!a) lines.push(`${p}: appeared (${b!.type})`);
    else if (!b) lines.push(`${p}: disappeared (was ${a.type})`);
    else {
      const changed = (Object.keys({ ...a, ...b }) as (keyof Fingerprint)[]).filter((k) => a[k] !== b[k]);
      if (changed.length > 0) lines.push(`${p}: ${changed.join(', ')} changed`);
    }
  }
  return lines;
}
