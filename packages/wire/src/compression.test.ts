import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode, encode, encodePieces } from './codec.js';
import {
  availableCodecs,
  chooseCodec,
  compressPieces,
  expandMessage,
  MIN_COMPRESS_BYTES,
  NEVER_COMPRESSED,
  worthCompressing,
} from './compression.js';
import { WireError } from './errors.js';
import type { CompressedMessage, Message, OpMessage } from './messages.js';
import { messageArb } from './test-arbitraries.js';

const epoch = { term: 1, node: 'p' };
const CODECS_HERE = availableCodecs();

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof WireError) return err.code;
    throw err;
  }
  return 'no error';
}

function writeOf(data: Uint8Array): OpMessage {
  return {
    type: 'op',
    epoch,
    seq: 3,
    op: {
      kind: 'write',
      path: 'logs/app.log',
      mode: 0o644,
      mtimeMs: 1,
      size: data.length,
      hash: '0123456789abcdef',
      encoding: 'full',
      part: 0,
      last: true,
      data,
    },
  };
}

/** What a receiver makes of the pieces a sender put on the wire. */
async function receive(pieces: Uint8Array[]): Promise<Message> {
  const msg = decode(Buffer.concat(pieces));
  return msg.type === 'compressed' ? expandMessage(msg) : msg;
}

/** Content that compresses: lines of text with some variation, or long runs. */
const compressibleArb = fc.oneof(
  fc
    .array(fc.constantFrom('GET /index.html 200\n', 'POST /api 201 ', 'x=1;', '\n'), {
      minLength: 120,
      maxLength: 400,
    })
    .map((parts) => new Uint8Array(Buffer.from(parts.join('')))),
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 600, max: 50_000 }))
    .map(([b, n]) => new Uint8Array(n).fill(b)),
);

/** A `compressed` message built by hand around `raw`. */
function wrap(raw: Uint8Array, over: Partial<CompressedMessage> = {}): CompressedMessage {
  return {
    type: 'compressed',
    codec: 'deflate',
    rawLength: raw.length,
    data: zlib.deflateRawSync(raw),
    ...over,
  };
}

describe('compressed messages', () => {
  it('carry any message of any content back exactly, with every codec this Node has', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          messageArb.filter((m) => !NEVER_COMPRESSED.has(m.type)),
          compressibleArb.map(writeOf),
          fc.uint8Array({ maxLength: 9000 }).map(writeOf),
        ),
        fc.constantFrom(...CODECS_HERE),
        async (msg, codec) => {
          const pieces = encodePieces(msg);
          const packed = await compressPieces(pieces, codec);
          expect(await receive(packed ?? pieces)).toEqual(msg);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('shrink compressible content and say how long it was', async () => {
    await fc.assert(
      fc.asyncProperty(compressibleArb, fc.constantFrom(...CODECS_HERE), async (data, codec) => {
        const pieces = encodePieces(writeOf(data));
        const raw = Buffer.concat(pieces).length;
        const packed = await compressPieces(pieces, codec);
        expect(packed).not.toBeNull();
        const outer = decode(Buffer.concat(packed!)) as CompressedMessage;
        expect(outer).toMatchObject({ type: 'compressed', codec, rawLength: raw });
        expect(Buffer.concat(packed!).length).toBeLessThan(raw);
      }),
      { numRuns: 60 },
    );
  });

  it('leave incompressible and short content as it is', async () => {
    for (const codec of CODECS_HERE) {
      expect(await compressPieces(encodePieces(writeOf(randomBytes(64 * 1024))), codec)).toBeNull();
      expect(await compressPieces(encodePieces(writeOf(randomBytes(3 * 1024 * 1024))), codec)).toBeNull();
      expect(await compressPieces([encode({ type: 'ack', epoch, seq: 9 })], codec)).toBeNull();
    }
    expect(worthCompressing(Buffer.alloc(MIN_COMPRESS_BYTES - 1))).toBe(false);
    expect(worthCompressing(Buffer.alloc(MIN_COMPRESS_BYTES))).toBe(true);
    // Random at the start, compressible after: the sample looks across the whole message.
    expect(worthCompressing(Buffer.concat([randomBytes(1024 * 1024), Buffer.alloc(1024 * 1024)]))).toBe(true);
  });

  it('refuse a raw length that lies, either way', async () => {
    const raw = encode(writeOf(Buffer.alloc(20_000, 7)));
    expect(await codeOf(expandMessage(wrap(raw)))).toBe('no error');
    expect(await codeOf(expandMessage(wrap(raw, { rawLength: raw.length + 1 })))).toBe('ERR_DECODE');
    expect(await codeOf(expandMessage(wrap(raw, { rawLength: raw.length - 1 })))).toBe('ERR_TOO_LARGE');
    expect(await codeOf(expandMessage(wrap(raw, { rawLength: 100 * 1024 * 1024 })))).toBe('ERR_TOO_LARGE');
  });

  it('stop a bomb at its raw length, far short of what it would inflate to', async () => {
    // 128 MiB of zeros in about 128 KiB, claiming 1 KiB.
    const bomb = zlib.deflateRawSync(Buffer.alloc(128 * 1024 * 1024), { level: 1 });
    const before = process.memoryUsage().arrayBuffers;
    const msg = decode(encode({ type: 'compressed', codec: 'deflate', rawLength: 1024, data: bomb }));
    expect(await codeOf(expandMessage(msg as CompressedMessage))).toBe('ERR_TOO_LARGE');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
    const brotli = zlib.brotliCompressSync(Buffer.alloc(16 * 1024 * 1024), {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 },
    });
    const claim = { type: 'compressed', codec: 'brotli', rawLength: 8 * 1024 * 1024, data: brotli } as const;
    expect(await codeOf(expandMessage(claim))).toBe('ERR_TOO_LARGE');
  });

  it('refuse data that is not of its codec, and what is never compressed', async () => {
    const junk = { type: 'compressed', codec: 'deflate', rawLength: 50, data: randomBytes(40) } as const;
    expect(await codeOf(expandMessage(junk))).toBe('ERR_DECODE');
    expect(await codeOf(expandMessage({ ...junk, codec: 'brotli' }))).toBe('ERR_DECODE');
    const inner = encode(wrap(encode(writeOf(Buffer.alloc(5000)))));
    expect(await codeOf(expandMessage(wrap(inner)))).toBe('ERR_BAD_MESSAGE');
    const welcome = encode({ type: 'welcome', epoch, seq: 1, mode: 'resume' });
    expect(await codeOf(expandMessage(wrap(welcome)))).toBe('ERR_BAD_MESSAGE');
    expect(await codeOf(expandMessage(wrap(Buffer.from('not msgpack at all, just text'))))).toBe(
      'ERR_DECODE',
    );
    if (!CODECS_HERE.includes('zstd'))
      expect(await codeOf(expandMessage({ ...junk, codec: 'zstd' }))).toBe('ERR_BAD_MESSAGE');
  });
});

describe('chooseCodec', () => {
  it('compresses when either side asks and both share a codec, in our order', () => {
    const ours = ['zstd', 'brotli', 'deflate'] as const;
    expect(chooseCodec(true, ours, { codecs: ['deflate', 'brotli'] })).toBe('brotli');
    expect(chooseCodec(false, ours, { codecs: ['deflate'], compress: true })).toBe('deflate');
    expect(chooseCodec(false, ours, { codecs: ['deflate'] })).toBeNull();
    expect(chooseCodec(true, ours, {})).toBeNull();
    expect(chooseCodec(true, ['deflate'], { codecs: ['lz4', 'zstd'] })).toBeNull();
    expect(chooseCodec(true, ['brotli', 'deflate'], { codecs: ['lz4', 'deflate'] })).toBe('deflate');
  });

  it('offers zstd only where this Node has it', () => {
    expect(CODECS_HERE.includes('zstd')).toBe(
      typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function',
    );
    expect(CODECS_HERE).toContain('brotli');
    expect(CODECS_HERE).toContain('deflate');
  });
});

describe('worthCompressing', () => {
  it('judges the pieces of a message as it judges their concatenation', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 9000 }),
            fc.integer({ min: 0, max: 9000 }).map((n) => new Uint8Array(n).fill(7)),
          ),
          { maxLength: 6 },
        ),
        (pieces) => {
          expect(worthCompressing(pieces)).toBe(worthCompressing(Buffer.concat(pieces)));
        },
      ),
      { numRuns: 300 },
    );
  });
});
