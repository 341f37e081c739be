/*
 * A node's HTTP endpoint (`--http host:port`, off by default): `/livez` and `/readyz` for load
 * balancers and probes, `/metrics` for Prometheus, `/` the live status page and `/api/status`
 * its data. The same rules as the replication listener: a non-loopback address needs a token
 * (or --insecure), and with a token everything but the two health checks asks for it, as a
 * bearer token or as the password of HTTP basic auth (what a browser prompts for). With the
 * node's certificate it serves https.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isLoopbackHost } from '../link/auth.js';
import { AgentError } from '../node/errors.js';
import type { Logger } from '../node/log.js';
import type { ListenAddress } from '../node/options.js';
import { NodeMetrics } from './metrics.js';
import { STATUS_PAGE_HTML } from './status-page.js';
import { type AnyAgent, PeerRates, type ReadyRules, readiness, statusView } from './status-view.js';

export interface HttpOptions {
  listen: ListenAddress;
  /** With a token, /metrics, / and /api/status ask for it. */
  token?: Uint8Array | null;
  tls?: { cert: Buffer; key: Buffer } | null;
  /** Allow a non-loopback address without a token. */
  insecure?: boolean;
  ready?: Partial<ReadyRules>;
  log?: Logger;
}

export interface HttpEndpoint {
  /** Where it serves (the port bound when 0 was asked for). */
  readonly url: string;
  close(): Promise<void>;
}

const PAGE_POLICY =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:";

/** Serves the endpoint for whichever agent `current()` returns at each request. */
export async function serveHttp(current: () => AnyAgent, o: HttpOptions): Promise<HttpEndpoint> {
  const { host, port } = o.listen;
  const token = o.token ?? null;
  if (!token && !o.insecure && !isLoopbackHost(host))
    throw new AgentError(
      'ERR_INSECURE',
      `refusing to serve HTTP on ${host} without a token: give --token-file, or --insecure to let anyone who can reach it read the node's status`,
    );
  const rules: ReadyRules = { readyLagSeconds: 10, readyMirrors: 0, ...o.ready };
  const metrics = new NodeMetrics(current);
  const rates = new PeerRates();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    void route(req, res).catch((err: Error) => {
      o.log?.('http-error', { path: req.url, error: err.message });
      if (!res.headersSent) send(res, 500, 'text/plain', `${err.message}\n`);
      else res.destroy();
    });
  };
  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'text/plain', 'only GET and HEAD\n');
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/livez') return send(res, 200, 'text/plain', 'ok\n');
    if (path === '/readyz') {
      const r = readiness(current(), rules);
      return send(
        res,
        r.ready ? 200 : 503,
        'text/plain',
        `${r.ready ? 'ready' : 'not ready'}: ${r.reason}\n`,
      );
    }
    if (path !== '/metrics' && path !== '/' && path !== '/api/status')
      return send(res, 404, 'text/plain', `no such page: ${path}\n`);
    if (token && !authorized(req, token)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="mimic", charset="UTF-8"');
      return send(res, 401, 'text/plain', 'the token is required (bearer, or the password of basic auth)\n');
    }
    if (path === '/metrics') return send(res, 200, metrics.contentType, await metrics.text());
    if (path === '/api/status')
      return send(res, 200, 'application/json', JSON.stringify(statusView(current(), rules, rates)));
    res.setHeader('Content-Security-Policy', PAGE_POLICY);
    return send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
  };
  const server: Server = o.tls
    ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, handle)
    : createServer(handle);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(new AgentError('ERR_PORT_IN_USE', `--http ${host}:${port}: address already in use`));
      else reject(new AgentError('ERR_LISTEN', `--http ${host}:${port}: ${err.message}`));
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  const url = `${o.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A bearer token, or basic auth whose password is the token (any user name). */
function authorized(req: IncomingMessage, token: Uint8Array): boolean {
  const h = req.headers.authorization ?? '';
  const space = h.indexOf(' ');
  if (space < 0) return false;
  const scheme = h.slice(0, space).toLowerCase();
  const value = h.slice(space + 1).trim();
  let given: string;
  if (scheme === 'bearer') given = value;
  else if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    given = decoded.slice(decoded.indexOf(':') + 1);
  } else return false;
  const a = Buffer.from(given, 'utf8');
  return a.length === token.length && timingSafeEqual(a, token);
}
