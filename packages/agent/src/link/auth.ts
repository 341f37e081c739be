import { open } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import { AgentError } from '../node/errors.js';
import type { Logger } from '../node/log.js';

/*
 * Shared-token authentication around the wire handshake (`authProof` / `verifyProof` in
 * @mimic/wire): reading the token file, deciding whether a listener may run without one, and
 * keeping refused connections from flooding the log.
 */

/** Fewest bytes a token may have: 128 bits if it is random, which it should be. */
export const MIN_TOKEN_BYTES = 16;

/** Most bytes read from a token file; a longer file is refused rather than read whole. */
export const MAX_TOKEN_FILE_BYTES = 4096;

/** A token file that is missing, unreadable, too short or readable by other users. */
export class TokenError extends AgentError {
  declare readonly code: 'ERR_TOKEN';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TOKEN', message, options);
    this.name = 'TokenError';
  }
}

/**
 * Throws {@link TokenError} when `mode` lets the group or others read, write or run the token
 * file: a token everyone on the host can read protects nothing.
 */
export function checkTokenFileMode(path: string, mode: number): void {
  if ((mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(3, '0');
    throw new TokenError(
      `token file ${path}: mode ${octal} gives other users access to it; run chmod 600 ${path}`,
    );
  }
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/**
 * Reads a token file: its bytes without trailing spaces, tabs and line ends, which must be at
 * least {@link MIN_TOKEN_BYTES}. The file must be a regular file of at most
 * {@link MAX_TOKEN_FILE_BYTES} with no permission bits for group or others. Every failure is a
 * {@link TokenError} (`ERR_TOKEN`) naming the file.
 */
export async function readTokenFile(path: string): Promise<Uint8Array> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
    throw new TokenError(`token file ${path}: cannot read it (${why ?? String(err)})`, { cause: err });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new TokenError(`token file ${path}: not a regular file`);
    checkTokenFileMode(path, st.mode);
    if (st.size > MAX_TOKEN_FILE_BYTES) {
      throw new TokenError(`token file ${path}: ${st.size} bytes, at most ${MAX_TOKEN_FILE_BYTES} expected`);
    }
    // One byte more than allowed, to notice a file that grew since the stat.
    const buf = new Uint8Array(MAX_TOKEN_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_TOKEN_FILE_BYTES) {
        throw new TokenError(`token file ${path}: more than ${MAX_TOKEN_FILE_BYTES} bytes`);
      }
    }
    while (length > 0 && isSpace(buf[length - 1]!)) length--;
    if (length === 0) throw new TokenError(`token file ${path}: empty`);
    if (length < MIN_TOKEN_BYTES) {
      throw new TokenError(
        `token file ${path}: ${length} bytes, at least ${MIN_TOKEN_BYTES} needed ` +
          `(make one with: head -c 32 /dev/urandom | base64 > ${path})`,
      );
    }
    return buf.slice(0, length);
  } finally {
    await fh.close();
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * True when `host` names only this machine: `localhost` (and its subdomains), an address in
 * 127.0.0.0/8, `::1`, or an IPv4-mapped loopback address (`::ffff:127.0.0.1`). Brackets around
 * an IPv6 address are allowed. `0.0.0.0`, `::` and the empty host mean every interface: false.
 */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const family = isIP(h);
  if (family === 4) return LOOPBACK.check(h, 'ipv4');
  if (family === 6) return LOOPBACK.check(h, 'ipv6');
  return false;
}

export interface RefusalLimiterOptions {
  /** Where refusals and summaries are logged. */
  log: Logger;
  /** Refusals logged per remote address and window before the rest are counted instead. */
  maxPerWindow?: number;
  /** Window length in milliseconds. */
  windowMs?: number;
  /** Remote addresses tracked at once; beyond that they share one entry. */
  maxRemotes?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface ResolvedRefusalLimiterOptions {
  readonly log: Logger;
  readonly maxPerWindow: number;
  readonly windowMs: number;
  readonly maxRemotes: number;
  readonly now: () => number;
}

interface Window {
  start: number;
  logged: number;
  suppressed: number;
}

/** The address under which refusals are counted once `maxRemotes` addresses are tracked. */
export const OTHER_REMOTES = 'other addresses';

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`${name}: expected a positive integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Logs refused connections (bad token, bad hello, junk) without letting one noisy peer fill
 * the log: at most `maxPerWindow` `refused` lines per remote address per window (defaults: 5
 * per 10 s); the rest are counted, and once the window is over one `refusals-suppressed` line
 * says "N more refusals from X suppressed". Summaries are written by the next `refused` call or
 * by `flush`, which the owner calls from a timer and on close.
 */
export class RefusalLimiter {
  readonly options: ResolvedRefusalLimiterOptions;
  readonly #windows = new Map<string, Window>();

  constructor(options: RefusalLimiterOptions) {
    if (typeof options?.log !== 'function') throw new TypeError('log: expected a function');
    this.options = Object.freeze({
      log: options.log,
      maxPerWindow: positiveInteger('maxPerWindow', options.maxPerWindow ?? 5),
      windowMs: positiveInteger('windowMs', options.windowMs ?? 10_000),
      maxRemotes: positiveInteger('maxRemotes', options.maxRemotes ?? 1024),
      now: options.now ?? Date.now,
    });
  }

  /** Remote addresses with a window still open. */
  get tracked(): number {
    return this.#windows.size;
  }

  /**
   * Records one refused connection from `remote`; logs it (event `refused`, with `fields`) unless
   * this address used up its window. Returns whether a line was logged.
   */
  refused(remote: string, fields: Record<string, unknown> = {}): boolean {
    const now = this.options.now();
    this.flush(now);
    let key = remote;
    let w = this.#windows.get(key);
    if (w === undefined && this.#windows.size >= this.options.maxRemotes) {
      key = OTHER_REMOTES;
      w = this.#windows.get(key);
    }
    if (w === undefined) {
      w = { start: now, logged: 0, suppressed: 0 };
      this.#windows.set(key, w);
    }
    if (w.logged >= this.options.maxPerWindow) {
      w.suppressed++;
      return false;
    }
    w.logged++;
    this.options.log('refused', { ...fields, remote });
    return true;
  }

  /** Ends every window older than `windowMs`, logging a summary for each that suppressed lines. */
  flush(now: number = this.options.now()): void {
    for (const [remote, w] of this.#windows) {
      if (now - w.start < this.options.windowMs) continue;
      this.#windows.delete(remote);
      this.#summarise(remote, w);
    }
  }

  /** Logs the summary of every open window, whatever its age, and forgets them (for shutdown). */
  close(): void {
    for (const [remote, w] of this.#windows) this.#summarise(remote, w);
    this.#windows.clear();
  }

  #summarise(remote: string, w: Window): void {
    if (w.suppressed === 0) return;
    const noun = w.suppressed === 1 ? 'refusal' : 'refusals';
    this.options.log('refusals-suppressed', {
      remote,
      count: w.suppressed,
      message: `${w.suppressed} more ${noun} from ${remote} suppressed`,
    });
  }
}
