import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { type Codec, encode, type Message } from '@mimic/wire';
import { afterEach, describe, expect, test } from 'vitest';
import type WebSocketClass from 'ws';
import type { WebSocketServer as WebSocketServerClass } from 'ws';
import { requireCjs } from '../node/require-cjs.js';
import { PeerSocket } from './peer-socket.js';

const WebSocket: typeof WebSocketClass = requireCjs('ws');
const { WebSocketServer }: { WebSocketServer: typeof WebSocketServerClass } = requireCjs('ws');

const epoch = { term: 1, node: 'p' };

/** Both ends of one real WebSocket on 127.0.0.1, each a PeerSocket recording what it gets. */
interface End {
  socket: PeerSocket;
  got: Message[];
  closed: Promise<string>;
}

const open: (() => void)[] = [];
afterEach(() => {
  for (const done of open.splice(0)) done();
});

async function pair(): Promise<{ server: End; client: End }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const end = (ws: WebSocketClass): End => {
    const got: Message[] = [];
    let closed!: (reason: string) => void;
    const e: End = { got, closed: new Promise((r) => (closed = r)), socket: null as unknown as PeerSocket };
    e.socket = new PeerSocket(ws, (m) => got.push(m), closed);
    return e;
  };
  const accepted = new Promise<End>((resolve) => wss.once('connection', (ws) => resolve(end(ws))));
  const port = (wss.address() as { port: number }).port;
  const client = end(new WebSocket(`ws://127.0.0.1:${port}`));
  await new Promise((resolve) => client.socket.ws.once('open', resolve));
  const server = await accepted;
  open.push(() => {
    client.socket.ws.terminate();
    wss.close();
  });
  return { server, client };
}

function write(data: Uint8Array, seq: number): Message {
  return {
    type: 'op',
    epoch,
    seq,
    op: {
      kind: 'write',
      path: `f${seq}`,
      mode: 0o644,
      mtimeMs: 1,
      size: data.length,
      hash: '0123456789abcdef',
      encoding: 'full',
      part: 0,
      last: true,
      data,
    },
  };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('a compressing link', () => {
  test('hands over every message in the order sent, compressed or not', async () => {
    const { server, client } = await pair();
    const codec: Codec = 'deflate';
    server.socket.useCodec(codec);
    client.socket.useCodec(codec);
    const sent: Message[] = [];
    for (let i = 0; i < 40; i++) {
      const kind = i % 4;
      const msg =
        kind === 0
          ? write(new Uint8Array(Buffer.from('line of text\n'.repeat(500 + i))), i)
          : kind === 1
            ? ({ type: 'ack', epoch, seq: i } as const)
            : kind === 2
              ? write(new Uint8Array(randomBytes(8000)), i)
              : write(new Uint8Array(700).fill(i), i);
      sent.push(msg);
      void server.socket.send(msg);
    }
    await until(() => client.got.length === sent.length);
    expect(client.got).toEqual(sent);
    // Less than the text alone: the text went compressed, the random bytes as they were.
    expect(server.socket.bytesSent).toBeLessThan(10 * 8000 + 30_000);
  });

  test('refuses a compressed message on a link that agreed on none', async () => {
    const { server, client } = await pair();
    server.socket.useCodec('deflate');
    void server.socket.send(write(new Uint8Array(20_000), 1));
    expect(await client.closed).toMatch(/^ERR_PROTOCOL: a deflate message, but no compression was agreed/);
    expect(client.got).toEqual([]);
  });

  test('closes on a bomb with the reason, and hands on nothing after it', async () => {
    const { server, client } = await pair();
    client.socket.useCodec('deflate');
    const bomb = zlib.deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { level: 1 });
    server.socket.ws.send(encode({ type: 'compressed', codec: 'deflate', rawLength: 4096, data: bomb }));
    server.socket.ws.send(encode({ type: 'ack', epoch, seq: 2 }));
    expect(await client.closed).toMatch(/^ERR_TOO_LARGE: compressed: inflates past its raw length of 4096/);
    expect(client.got).toEqual([]);
  });

  test('a welcome naming a codec this node did not offer ends the connection', async () => {
    const { client } = await pair();
    expect(client.socket.agree('brotli', ['deflate'])).toBe(false);
    expect(await client.closed).toMatch(/^ERR_PROTOCOL: the welcome names brotli/);
  });

  test('a close waits for the messages queued before it', async () => {
    const { server, client } = await pair();
    server.socket.useCodec('deflate');
    client.socket.useCodec('deflate');
    void server.socket.send(write(new Uint8Array(Buffer.from('abc\n'.repeat(500_000))), 1));
    void server.socket.send({ type: 'error', code: 'ERR_FENCED', message: 'this primary is fenced' });
    server.socket.close(4001, 'ERR_FENCED: fenced');
    expect(await client.closed).toBe('ERR_FENCED: fenced');
    expect(client.got.map((m) => m.type)).toEqual(['op', 'error']);
  });
});
