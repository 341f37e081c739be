import { checkHello, compareEpoch, decode, encode, type HelloMessage } from '@mimic/wire';
import WebSocket from 'ws';

export interface ProbeResult {
  url: string;
  hello: HelloMessage;
}

/**
 * Asks the node at `url` who it is: every node sends its hello first, so this waits for that
 * hello and hangs up. When the peer's epoch is lower than ours, ours is sent back first so the
 * peer learns it has been superseded (and fences itself, if it is a primary).
 */
export function probePeer(
  url: string,
  ours: () => HelloMessage,
  timeoutMs = 2000,
): Promise<ProbeResult | null> {
  return new Promise((resolve) => {
    let done = false;
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: 64 * 1024,
      handshakeTimeout: timeoutMs,
    });
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
        if (msg.type !== 'hello') return finish(null);
        checkHello(msg);
        const mine = ours();
        if (compareEpoch(msg.epoch, mine.epoch) < 0) ws.send(encode(mine));
        finish({ url, hello: msg });
      } catch {
        finish(null);
      }
    });
  });
}
