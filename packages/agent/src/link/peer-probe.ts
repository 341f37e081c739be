import { compareEpoch, decode, encode, type HelloMessage } from '@mimic/wire';
import type WebSocketClass from 'ws';
import { requireCjs } from '../node/require-cjs.js';
import { Handshake } from './handshake.js';

const WebSocket: typeof WebSocketClass = requireCjs('ws');

export interface ProbeResult {
  url: string;
  hello: HelloMessage;
}

export interface ProbeOptions {
  /** Shared token: the peer's answer counts only once it has proved it holds the token. */
  token?: Uint8Array | null;
  /** CA to trust for wss:// peers. */
  ca?: Buffer;
  timeoutMs?: number;
}

/**
 * Asks the node at `url` who it is. Every node sends its hello first; this waits for it and
 * hangs up. When the peer's epoch is lower than ours, ours is sent back so the peer learns it
 * has been superseded (a primary then fences itself). With a token, our hello is always sent
 * (the peer answers it with its proof) and the peer's hello counts only with a valid proof;
 * ours is proved too when the peer should learn our epoch.
 */
export function probePeer(
  url: string,
  ownNodeId: string,
  ours: (nonce: Uint8Array) => HelloMessage,
  options: ProbeOptions = {},
): Promise<ProbeResult | null> {
  const timeoutMs = options.timeoutMs ?? 2000;
  return new Promise((resolve) => {
    let done = false;
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: 64 * 1024,
      handshakeTimeout: timeoutMs,
      ...(options.ca ? { ca: options.ca } : {}),
    });
    const handshake = new Handshake(options.token ?? null, ownNodeId, ours);
    const finish = (r: ProbeResult | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
      if (ws.readyState === WebSocket.OPEN) setTimeout(() => ws.close(1000, 'probe'), 50).unref();
      else ws.terminate();
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    timer.unref();
    ws.on('error', () => finish(null));
    ws.on('close', () => finish(null));
    ws.on('message', (data) => {
      try {
        const msg = decode(data as Buffer);
        const was = handshake.state;
        const now = handshake.receive(msg);
        const peer = handshake.peer!;
        if (was === 'hello') {
          const lower = compareEpoch(peer.epoch, handshake.hello().epoch) < 0;
          if (now === 'done') {
            if (lower) ws.send(encode(handshake.hello()));
            return finish({ url, hello: peer });
          }
          ws.send(encode(handshake.hello()));
          if (lower) ws.send(encode(handshake.proof()));
          return;
        }
        finish({ url, hello: peer });
      } catch {
        finish(null);
      }
    });
  });
}
