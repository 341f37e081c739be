import { unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { AgentError, type AgentErrorCode } from './errors.js';

/** The control socket's file inside a state folder. */
export function controlSocketPath(stateDir: string): string {
  return join(stateDir, 'control.sock');
}

export type ControlHandler = (request: { cmd: string }) => Promise<unknown> | unknown;

const MAX_REQUEST = 64 * 1024;

/**
 * A Unix socket in the state folder that answers one JSON line with one JSON line:
 * how `mimic status` and `promote-mirror` reach a running agent.
 */
export async function serveControl(stateDir: string, handler: ControlHandler): Promise<Server> {
  const path = controlSocketPath(stateDir);
  await unlink(path).catch(() => {});
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_REQUEST) return sock.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: { cmd: string };
      try {
        req = JSON.parse(buf.slice(0, nl)) as { cmd: string };
      } catch {
        sock.end(`${JSON.stringify({ ok: false, code: 'ERR_BAD_REQUEST', error: 'request is not JSON' })}\n`);
        return;
      }
      Promise.resolve()
        .then(() => handler(req))
        .then(
          (result) => sock.end(`${JSON.stringify({ ok: true, result })}\n`),
          (err: { code?: string; message?: string }) =>
            sock.end(
              `${JSON.stringify({ ok: false, code: err.code ?? 'ERR_INTERNAL', error: err.message })}\n`,
            ),
        );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  server.unref();
  return server;
}

/** Sends one request to the agent whose state folder is `stateDir`. */
export function callControl(stateDir: string, cmd: string, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(controlSocketPath(stateDir));
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new AgentError('ERR_TIMEOUT', 'the agent did not answer'));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify({ cmd })}\n`));
    sock.on('data', (d: string) => {
      buf += d;
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const noAgent = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      reject(
        Object.assign(
          new Error(noAgent ? `no mimic agent is running with state folder ${stateDir}` : err.message),
          {
            code: noAgent ? 'ERR_NO_AGENT' : (err.code ?? 'ERR_CONTROL'),
          },
        ),
      );
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(buf) as { ok: boolean; result?: unknown; code?: string; error?: string };
        if (reply.ok) resolve(reply.result);
        else reject(new AgentError((reply.code ?? 'ERR_CONTROL') as AgentErrorCode, reply.error ?? 'failed'));
      } catch {
        reject(new AgentError('ERR_CONTROL', 'the agent sent an unreadable answer'));
      }
    });
  });
}
