import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authProof, NONCE_BYTES, verifyProof } from '@mimic/wire';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkTokenFileMode,
  isLoopbackHost,
  MAX_TOKEN_FILE_BYTES,
  OTHER_REMOTES,
  RefusalLimiter,
  readTokenFile,
  TokenError,
} from './auth.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mimic-auth-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tokenFile(name: string, content: string | Uint8Array, mode = 0o600): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content, { mode });
  await chmod(path, mode);
  return path;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TokenError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('readTokenFile', () => {
  it('returns the bytes without the trailing newline and spaces', async () => {
    const path = await tokenFile('token', 'correct-horse-battery-staple \t\r\n\n');
    expect(Buffer.from(await readTokenFile(path)).toString()).toBe('correct-horse-battery-staple');
  });

  it('keeps binary tokens and leading whitespace as they are', async () => {
    const bytes = new Uint8Array([0x20, ...randomBytes(31).map((b) => (b === 0x20 ? 0x21 : b)), 0x41]);
    const path = await tokenFile('binary', bytes);
    expect(await readTokenFile(path)).toEqual(bytes);
  });

  it('refuses a missing file, naming it', async () => {
    const path = join(dir, 'missing');
    const err = await readTokenFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenError);
    expect((err as TokenError).code).toBe('ERR_TOKEN');
    expect((err as TokenError).message).toContain(path);
  });

  it('refuses an empty file and a file of whitespace only', async () => {
    expect(await codeOf(readTokenFile(await tokenFile('empty', '')))).toBe('ERR_TOKEN');
    expect(await codeOf(readTokenFile(await tokenFile('blank', ' \n\n')))).toBe('ERR_TOKEN');
  });

  it('refuses a token shorter than 16 bytes once trimmed', async () => {
    expect(await codeOf(readTokenFile(await tokenFile('short', '0123456789abcde\n')))).toBe('ERR_TOKEN');
    expect(await codeOf(readTokenFile(await tokenFile('ok', '0123456789abcdef\n')))).toBe('no error');
  });

  it('refuses a file group or others may access, and says to chmod 600', async () => {
    for (const mode of [0o640, 0o604, 0o660, 0o644, 0o610]) {
      const path = await tokenFile(`open-${mode.toString(8)}`, 'a long enough shared token', mode);
      const err = await readTokenFile(path).catch((e: unknown) => e);
      expect((err as TokenError).code).toBe('ERR_TOKEN');
      expect((err as TokenError).message).toContain('chmod 600');
    }
    const ok = await tokenFile('owner-only', 'a long enough shared token', 0o400);
    expect(await codeOf(readTokenFile(ok))).toBe('no error');
  });

  it('refuses a folder and an oversized file', async () => {
    const sub = join(dir, 'folder');
    await mkdir(sub, { mode: 0o700 });
    expect(await codeOf(readTokenFile(sub))).toBe('ERR_TOKEN');
    const big = await tokenFile('big', 'x'.repeat(MAX_TOKEN_FILE_BYTES + 1));
    expect(await codeOf(readTokenFile(big))).toBe('ERR_TOKEN');
  });

  it('gives a token the wire handshake accepts, and a different one fails it', async () => {
    const token = await readTokenFile(await tokenFile('token', 'the primary and mirrors share this\n'));
    const other = await readTokenFile(await tokenFile('other', 'the attacker guessed this instead\n'));
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
    expect(verifyProof(token, nonce, 'mirror-1', authProof(token, nonce, 'mirror-1'))).toBe(true);
    expect(verifyProof(token, nonce, 'mirror-1', authProof(other, nonce, 'mirror-1'))).toBe(false);
  });
});

describe('checkTokenFileMode', () => {
  it('accepts exactly the modes without group or other bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0o7777 }), (mode) => {
        let refused = false;
        try {
          checkTokenFileMode('/t', mode | 0o100000);
        } catch (err) {
          refused = err instanceof TokenError && err.code === 'ERR_TOKEN';
        }
        return refused === ((mode & 0o077) !== 0);
      }),
    );
  });
});

describe('isLoopbackHost', () => {
  it.each([
    'localhost',
    'LOCALHOST',
    'localhost.',
    'api.localhost',
    '127.0.0.1',
    '127.1.2.3',
    '127.255.255.254',
    '::1',
    '[::1]',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
  ])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each([
    '',
    '0.0.0.0',
    '::',
    '[::]',
    '128.0.0.1',
    '126.255.255.255',
    '10.0.0.1',
    '192.168.1.10',
    '::2',
    '::ffff:10.0.0.1',
    'example.com',
    'localhost.example.com',
    '127.0.0.1.example.com',
  ])('%j is not loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});

describe('RefusalLimiter', () => {
  function harness(options: { maxPerWindow?: number; windowMs?: number; maxRemotes?: number } = {}) {
    let now = 1_000_000;
    const lines: { event: string; fields: Record<string, unknown> }[] = [];
    const limiter = new RefusalLimiter({
      ...options,
      log: (event, fields) => lines.push({ event, fields }),
      now: () => now,
    });
    return {
      limiter,
      lines,
      advance: (ms: number) => {
        now += ms;
      },
    };
  }

  it('logs the first five refusals from one address in ten seconds, then one summary', () => {
    const { limiter, lines, advance } = harness();
    for (let i = 0; i < 12; i++) {
      limiter.refused('10.0.0.9', { reason: 'bad proof' });
      advance(100);
    }
    expect(lines.map((l) => l.event)).toEqual(['refused', 'refused', 'refused', 'refused', 'refused']);
    expect(lines[0]!.fields).toEqual({ remote: '10.0.0.9', reason: 'bad proof' });
    advance(10_000);
    limiter.flush();
    expect(lines.slice(5)).toEqual([
      {
        event: 'refusals-suppressed',
        fields: { remote: '10.0.0.9', count: 7, message: '7 more refusals from 10.0.0.9 suppressed' },
      },
    ]);
  });

  it('counts each address on its own', () => {
    const { limiter, lines } = harness({ maxPerWindow: 2 });
    for (const remote of ['a', 'b', 'a', 'b', 'a', 'c']) limiter.refused(remote);
    expect(lines.map((l) => l.fields.remote)).toEqual(['a', 'b', 'a', 'b', 'c']);
  });

  it('writes a due summary on the next refusal and starts a new window', () => {
    const { limiter, lines, advance } = harness({ maxPerWindow: 1, windowMs: 1000 });
    expect(limiter.refused('x')).toBe(true);
    expect(limiter.refused('x')).toBe(false);
    advance(1000);
    expect(limiter.refused('x')).toBe(true);
    expect(lines.map((l) => l.event)).toEqual(['refused', 'refusals-suppressed', 'refused']);
    expect(lines[1]!.fields.message).toBe('1 more refusal from x suppressed');
  });

  it('writes no summary when nothing was suppressed, and forgets ended windows', () => {
    const { limiter, lines, advance } = harness();
    limiter.refused('x');
    advance(10_000);
    limiter.flush();
    expect(lines).toHaveLength(1);
    expect(limiter.tracked).toBe(0);
  });

  it('bounds the addresses it tracks', () => {
    const { limiter, lines } = harness({ maxRemotes: 3, maxPerWindow: 1 });
    for (let i = 0; i < 100; i++) limiter.refused(`10.0.0.${i}`);
    expect(limiter.tracked).toBe(4);
    // Three addresses of their own, then one more line for all the others together.
    expect(lines).toHaveLength(4);
    limiter.close();
    expect(lines.at(-1)).toMatchObject({
      event: 'refusals-suppressed',
      fields: { remote: OTHER_REMOTES, count: 96 },
    });
    expect(limiter.tracked).toBe(0);
  });

  it('rejects bad options with a TypeError', () => {
    const log = () => {};
    expect(() => new RefusalLimiter({ log, maxPerWindow: 0 })).toThrow(TypeError);
    expect(() => new RefusalLimiter({ log, windowMs: -1 })).toThrow(TypeError);
    expect(() => new RefusalLimiter({ log, maxRemotes: 1.5 })).toThrow(TypeError);
    expect(() => new RefusalLimiter({} as never)).toThrow(TypeError);
  });
});
