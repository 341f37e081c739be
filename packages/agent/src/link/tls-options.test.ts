import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { loadClientTls, loadServerTls, TlsError } from './tls-options.js';

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const run = promisify(execFile);

interface Pair {
  cert: string;
  key: string;
}

let dir: string;
let a: Pair;
let b: Pair;

/** A fresh self-signed certificate for 127.0.0.1 and localhost, valid for a day. */
async function selfSigned(name: string): Promise<Pair> {
  const pair = { cert: join(dir, `${name}-cert.pem`), key: join(dir, `${name}-key.pem`) };
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-days',
    '1',
    '-keyout',
    pair.key,
    '-out',
    pair.cert,
  ]);
  return pair;
}

async function failure(promise: Promise<unknown>): Promise<TlsError> {
  const err = await promise.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TlsError);
  return err as TlsError;
}

describe.skipIf(!hasOpenssl)('TLS options', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mimic-tls-'));
    [a, b] = await Promise.all([selfSigned('a'), selfSigned('b')]);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('loadServerTls', () => {
    it('returns the certificate and key as PEM buffers', async () => {
      const tls = await loadServerTls(a);
      expect(tls.cert.toString()).toContain('-----BEGIN CERTIFICATE-----');
      expect(tls.key.toString()).toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    });

    it('names a missing certificate or key file', async () => {
      const missing = join(dir, 'missing.pem');
      const e1 = await failure(loadServerTls({ cert: missing, key: a.key }));
      expect(e1.code).toBe('ERR_TLS');
      expect(e1.file).toBe(missing);
      expect(e1.message).toContain(missing);
      const e2 = await failure(loadServerTls({ cert: a.cert, key: missing }));
      expect(e2.file).toBe(missing);
    });

    it('refuses files that are not PEM, or hold the wrong kind of PEM', async () => {
      const junk = join(dir, 'junk.pem');
      await writeFile(junk, 'not a certificate\n');
      expect((await failure(loadServerTls({ cert: junk, key: a.key }))).file).toBe(junk);
      expect((await failure(loadServerTls({ cert: a.key, key: a.key }))).file).toBe(a.key);
      expect((await failure(loadServerTls({ cert: a.cert, key: a.cert }))).file).toBe(a.cert);
    });

    it('refuses a key that does not belong to the certificate', async () => {
      const err = await failure(loadServerTls({ cert: a.cert, key: b.key }));
      expect(err.code).toBe('ERR_TLS');
      expect(err.file).toBe(b.key);
    });

    it('refuses a certificate block that does not parse', async () => {
      const broken = join(dir, 'broken.pem');
      await writeFile(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      expect((await failure(loadServerTls({ cert: broken, key: a.key }))).code).toBe('ERR_TLS');
    });
  });

  describe('loadClientTls', () => {
    it('returns the trusted certificates, one or a bundle', async () => {
      expect((await loadClientTls({ ca: a.cert })).ca.toString()).toContain('BEGIN CERTIFICATE');
      const bundle = join(dir, 'bundle.pem');
      await writeFile(
        bundle,
        Buffer.concat([(await loadClientTls({ ca: a.cert })).ca, (await loadClientTls({ ca: b.cert })).ca]),
      );
      expect((await loadClientTls({ ca: bundle })).ca.toString().match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    });

    it('names a missing file or one without a certificate', async () => {
      const missing = join(dir, 'no-ca.pem');
      expect((await failure(loadClientTls({ ca: missing }))).file).toBe(missing);
      expect((await failure(loadClientTls({ ca: a.key }))).file).toBe(a.key);
    });
  });

  describe('over real sockets', () => {
    let server: Server;
    let wss: WebSocketServer;
    let port: number;
    let connections = 0;

    beforeAll(async () => {
      server = createServer(await loadServerTls(a));
      wss = new WebSocketServer({ server, maxPayload: 1024 });
      wss.on('connection', (ws) => {
        connections++;
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });

    afterAll(async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    afterEach(() => {
      connections = 0;
    });

    /** Connects, sends one message, resolves with the echo; rejects on any error. */
    function echo(url: string, options: WebSocket.ClientOptions): Promise<string> {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { ...options, handshakeTimeout: 5_000 });
        ws.on('open', () => ws.send(Buffer.from('hello over tls')));
        ws.on('message', (data) => {
          resolve((data as Buffer).toString());
          ws.close();
        });
        ws.on('error', reject);
      });
    }

    it('a client trusting the certificate connects and exchanges a message', async () => {
      const { ca } = await loadClientTls({ ca: a.cert });
      expect(await echo(`wss://127.0.0.1:${port}`, { ca })).toBe('hello over tls');
      expect(await echo(`wss://localhost:${port}`, { ca })).toBe('hello over tls');
      expect(connections).toBe(2);
    });

    it('a client without the CA cannot connect', async () => {
      const err = await echo(`wss://127.0.0.1:${port}`, {}).then(
        () => null,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
      expect(connections).toBe(0);
    });

    it('a client pinning another certificate cannot connect', async () => {
      const { ca } = await loadClientTls({ ca: b.cert });
      const err = await echo(`wss://127.0.0.1:${port}`, { ca }).then(
        () => null,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err).not.toBeNull();
      expect(connections).toBe(0);
    });

    it('a plain ws:// client gets nothing from the TLS listener', async () => {
      const err = await echo(`ws://127.0.0.1:${port}`, {}).then(
        () => null,
        (e: Error) => e,
      );
      expect(err).not.toBeNull();
      expect(connections).toBe(0);
    });
  });
});
