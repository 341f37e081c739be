import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AgentError } from '../node/errors.js';

/*
 * TLS material from PEM files: the listener's certificate and key (`--tls-cert`, `--tls-key`),
 * and the certificate authority a dialing node trusts (`--tls-ca`). For a pinned self-signed
 * certificate, pass the certificate itself as the CA. Everything is checked when loaded, so a
 * wrong file fails at start-up with its name rather than later as an obscure handshake error.
 */

/** A TLS file that is missing, unreadable, not PEM, expired, or a key that does not fit. */
export class TlsError extends AgentError {
  declare readonly code: 'ERR_TLS';
  /** The file concerned. */
  readonly file: string;

  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('ERR_TLS', message, options);
    this.name = 'TlsError';
    this.file = file;
  }
}

export interface ServerTlsFiles {
  /** PEM certificate chain, leaf first. */
  cert: string;
  /** PEM private key of the leaf certificate, unencrypted. */
  key: string;
}

export interface ClientTlsFiles {
  /** PEM certificates to trust: a private CA, or the server's own self-signed certificate. */
  ca: string;
}

/** What `https.createServer` takes. */
export interface ServerTlsOptions {
  cert: Buffer;
  key: Buffer;
}

/** What the `ws` client (and `tls.connect`) take. */
export interface ClientTlsOptions {
  ca: Buffer;
}

/** Largest PEM file read; certificate bundles are a few hundred KiB at most. */
const MAX_PEM_BYTES = 1024 * 1024;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

async function readPem(file: string, what: string): Promise<Buffer> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`${what}: expected a file path`);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
    throw new TlsError(file, `${what} ${file}: cannot read it (${why ?? String(err)})`, { cause: err });
  }
  if (bytes.length > MAX_PEM_BYTES) {
    throw new TlsError(file, `${what} ${file}: ${bytes.length} bytes, not a PEM file`);
  }
  if (!bytes.includes('-----BEGIN ')) {
    throw new TlsError(file, `${what} ${file}: not PEM (no -----BEGIN line)`);
  }
  return bytes;
}

function certificatesOf(file: string, what: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TlsError(file, `${what} ${file}: holds no PEM certificate`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsError(
        file,
        `${what} ${file}: certificate ${i + 1} cannot be parsed (${(err as Error).message})`,
        {
          cause: err,
        },
      );
    }
  });
}

function checkValidity(file: string, what: string, cert: X509Certificate, now: number): void {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (Number.isFinite(to) && to < now) {
    throw new TlsError(file, `${what} ${file}: certificate expired on ${cert.validTo}`);
  }
  if (Number.isFinite(from) && from > now) {
    throw new TlsError(file, `${what} ${file}: certificate not valid before ${cert.validFrom}`);
  }
}

/**
 * Reads the listener's certificate chain and private key, checks that both are PEM, that the
 * leaf certificate is valid now and that the key belongs to it. Returns `{ cert, key }` for
 * `https.createServer`. Throws {@link TlsError} (`ERR_TLS`) naming the file at fault.
 */
export async function loadServerTls(files: ServerTlsFiles): Promise<ServerTlsOptions> {
  const [cert, key] = await Promise.all([readPem(files.cert, '--tls-cert'), readPem(files.key, '--tls-key')]);
  const [leaf] = certificatesOf(files.cert, '--tls-cert', cert);
  checkValidity(files.cert, '--tls-cert', leaf!, Date.now());
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    throw new TlsError(
      files.key,
      `--tls-key ${files.key}: not a usable unencrypted private key (${(err as Error).message})`,
      { cause: err },
    );
  }
  if (!leaf!.checkPrivateKey(keyObject)) {
    throw new TlsError(files.key, `--tls-key ${files.key}: does not match the certificate in ${files.cert}`);
  }
  return { cert, key };
}

/**
 * Reads the certificates a dialing node trusts: a CA bundle, or the listener's self-signed
 * certificate to pin it. Each certificate must parse and be valid now. Returns `{ ca }` for the
 * `ws` client options. Throws {@link TlsError} (`ERR_TLS`) naming the file.
 */
export async function loadClientTls(files: ClientTlsFiles): Promise<ClientTlsOptions> {
  const ca = await readPem(files.ca, '--tls-ca');
  const now = Date.now();
  for (const cert of certificatesOf(files.ca, '--tls-ca', ca)) checkValidity(files.ca, '--tls-ca', cert, now);
  return { ca };
}
