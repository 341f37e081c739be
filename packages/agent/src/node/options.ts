import { isAbsolute, resolve } from 'node:path';

/** host:port as given on a command line or in options. */
export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(value: string): ListenAddress {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) throw new TypeError(`--listen ${JSON.stringify(value)}: expected host:port`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function parsePeerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${JSON.stringify(value)}: expected a ws:// or wss:// URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new TypeError(`${JSON.stringify(value)}: expected a ws:// or wss:// URL`);
  }
  return url.toString().replace(/\/$/, '');
}

export function resolveDir(value: string, what: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${what} must be a folder path`);
  return isAbsolute(value) ? value : resolve(value);
}
