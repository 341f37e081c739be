import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { WebSocketServer as WebSocketServerClass } from 'ws';
import { AgentError } from '../node/errors.js';
import type { ListenAddress } from '../node/options.js';
import { requireCjs } from '../node/require-cjs.js';

const { WebSocketServer }: { WebSocketServer: typeof WebSocketServerClass } = requireCjs('ws');

/** Largest WebSocket frame accepted (the wire codec caps a message well below this). */
const MAX_FRAME = 16 * 1024 * 1024;

export interface WsServer {
  wss: WebSocketServerClass;
  /** The https server the WebSocket server rides on, with TLS. */
  https: HttpsServer | null;
  /** Where it listens: the port is the one bound when 0 was asked for. */
  address: ListenAddress;
}

/**
 * The primary's WebSocket server, listening. Throws `AgentError` (`ERR_PORT_IN_USE`,
 * `ERR_LISTEN`) when it cannot.
 */
export async function listenWs(
  listen: ListenAddress,
  tls: { cert: Buffer; key: Buffer } | null,
): Promise<WsServer> {
  const { host, port } = listen;
  // TLS: the WebSocket server rides on an https server holding the certificate.
  const https = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }) : null;
  const wss = https
    ? new WebSocketServer({ server: https, maxPayload: MAX_FRAME, perMessageDeflate: false })
    : new WebSocketServer({ host, port, maxPayload: MAX_FRAME, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    const emitter = https ?? wss;
    emitter.once('listening', () => resolve());
    emitter.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(new AgentError('ERR_PORT_IN_USE', `${host}:${port}: address already in use`));
      else reject(new AgentError('ERR_LISTEN', `${host}:${port}: ${err.message}`));
    });
    https?.listen(port, host);
  });
  const addr = https ? https.address() : wss.address();
  return {
    wss,
    https,
    address: typeof addr === 'object' && addr ? { host, port: addr.port } : { host, port },
  };
}
