import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decode, encode, encodePieces, maxWriteDataBytes } from './codec.js';
import { WireError, type WireErrorCode } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';
import { MESSAGE_TYPES, type Message, type OpMessage } from './messages.js';
import { MESSAGE_ARBITRARIES, messageArb, opArb } from './test-arbitraries.js';

// A plain msgpack encoder, to build bytes the codec itself would refuse to produce.
const raw = new Packr({ useRecords: false });

function codeOf(fn: () => unknown): WireErrorCode | 'no error' {
  try {
    fn();
  } catch (err) {
    if (err instanceof WireError) return err.code;
    throw err;
  }
  return 'no error';
}

const epoch = { term: 3, node: 'primary-1' };

function writeOp(data: Uint8Array, path = 'dir/file.txt'): OpMessage {
  return {
    type: 'op',
    epoch,
    seq: 7,
    op: {
      kind: 'write',
      path,
      mode: 0o644,
      mtimeMs: 1_700_000_000_000.5,
      size: data.length,
      hash: '0123456789abcdef',
      encoding: 'full',
      part: 0,
      last: true,
      data,
    },
  };
}

describe('round trip', () => {
  for (const type of MESSAGE_TYPES) {
    it(`decode(encode(m)) equals m for every ${type} message`, () => {
      fc.assert(
        fc.property(MESSAGE_ARBITRARIES[type], (msg) => {
          expect(decode(encode(msg))).toEqual(msg);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('decodes from a Buffer and from a plain Uint8Array alike', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        const bytes = encode(msg);
        const plain = new Uint8Array(bytes);
        expect(decode(plain)).toEqual(decode(Buffer.from(plain)));
      }),
      { numRuns: 200 },
    );
  });

  it('leaves optional fields set to undefined off the wire', () => {
    const msg: Message = { type: 'need', epoch, path: 'a', signature: undefined };
    const decoded = decode(encode(msg));
    expect(Object.keys(decoded)).not.toContain('signature');
  });

  it('keeps encoded messages intact across later encodes', () => {
    const first = encode(writeOp(new Uint8Array(100).fill(1)));
    const copy = Uint8Array.from(first);
    for (let i = 0; i < 200; i++) encode(writeOp(new Uint8Array(3000).fill(i)));
    expect(first).toEqual(copy);
  });
});

describe('encodePieces', () => {
  const joined = (pieces: Uint8Array[]) => new Uint8Array(Buffer.concat(pieces));

  it('gives pieces that join into a message equal to the one encoded', () => {
    fc.assert(
      fc.property(messageArb, opArb, fc.integer({ min: 0, max: 12_000 }), (msg, op, size) => {
        // Every message as it is, and ops with contents large enough to travel apart.
        const data = new Uint8Array(size).map((_, i) => i * 7);
        const withData: Message =
          op.kind === 'write' ? { type: 'op', epoch, seq: 1, op: { ...op, data } } : msg;
        for (const m of [msg, withData]) expect(decode(joined(encodePieces(m)))).toEqual(m);
      }),
      { numRuns: 200 },
    );
  });

  it('gives pieces that join into the same message for batches with contents of any size', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(opArb, fc.integer({ min: 0, max: 8_000 })), { minLength: 1, maxLength: 24 }),
        (items) => {
          const ops = items.map(([op, size]) =>
            op.kind === 'write' ? { ...op, data: new Uint8Array(size).fill(size & 0xff) } : op,
          );
          const msg: Message = { type: 'ops', epoch, seqs: ops.map((_, i) => 100 + i), ops };
          const pieces = encodePieces(msg);
          expect(decode(joined(pieces))).toEqual(msg);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("passes a batch's large contents through as pieces of their own, not copies", () => {
    const big = new Uint8Array(50_000).fill(1);
    const small = new Uint8Array(100).fill(2);
    const other = new Uint8Array(8192).fill(3);
    const write = (path: string, data: Uint8Array) =>
      ({ ...writeOp(data, path).op, data }) as OpMessage['op'];
    const msg: Message = {
      type: 'ops',
      epoch,
      seqs: [1, 2, 3, 4],
      ops: [
        write('a', big),
        write('b', small),
        { kind: 'mkdir', path: 'c', mode: 0o755, mtimeMs: 5 },
        write('d', other),
      ],
    };
    const pieces = encodePieces(msg);
    // head and a's header | a's content | b, c and d's header | d's content
    expect(pieces).toHaveLength(4);
    expect(pieces[1]).toBe(big);
    expect(pieces[3]).toBe(other);
    expect(decode(joined(pieces))).toEqual(msg);
    expect(codeOf(() => encodePieces(msg, { maxMessageBytes: 58_000 }))).toBe('ERR_TOO_LARGE');
  });

  it("passes a large write's content through as its own piece, not a copy", () => {
    const data = new Uint8Array(100_000).fill(9);
    const msg = writeOp(data);
    const pieces = encodePieces(msg);
    expect(pieces).toHaveLength(2);
    expect(pieces[1]).toBe(data);
    expect(encodePieces(writeOp(new Uint8Array(10)))).toHaveLength(1);
  });

  it('applies the size limit to the whole message', () => {
    const msg = writeOp(new Uint8Array(70_000));
    expect(codeOf(() => encodePieces(msg, { maxMessageBytes: 65_536 }))).toBe('ERR_TOO_LARGE');
  });

  it('validates unless told the message is trusted', () => {
    const bad = writeOp(new Uint8Array(8192), '../escape');
    expect(codeOf(() => encodePieces(bad))).toBe('ERR_BAD_PATH');
    expect(encodePieces(bad, undefined, { trusted: true })).toHaveLength(2);
  });
});

describe('size limit', () => {
  it('refuses oversize input before decoding it', () => {
    // Junk that would fail to decode, so only a size check can give ERR_TOO_LARGE.
    const junk = new Uint8Array(DEFAULT_LIMITS.maxMessageBytes + 1).fill(0xc1);
    expect(codeOf(() => decode(junk))).toBe('ERR_TOO_LARGE');
    expect(codeOf(() => decode(junk.subarray(0, 1000)))).toBe('ERR_DECODE');
  });

  it('applies a caller-given maxMessageBytes to both directions', () => {
    const bytes = encode(writeOp(new Uint8Array(500)));
    const limits = { maxMessageBytes: bytes.length - 1 };
    expect(codeOf(() => decode(bytes, limits))).toBe('ERR_TOO_LARGE');
    expect(codeOf(() => encode(writeOp(new Uint8Array(500)), limits))).toBe('ERR_TOO_LARGE');
    expect(codeOf(() => decode(bytes, { maxMessageBytes: bytes.length }))).toBe('no error');
  });

  it('refuses to encode a write whose data alone is over the limit', () => {
    const data = new Uint8Array(DEFAULT_LIMITS.maxMessageBytes + 1);
    expect(codeOf(() => encode(writeOp(data)))).toBe('ERR_TOO_LARGE');
  });

  it('fits a write of maxWriteDataBytes with the longest path', () => {
    for (const maxMessageBytes of [8 * 1024 * 1024, 64 * 1024, 6000]) {
      const limits = { maxMessageBytes };
      const longPath = Array.from({ length: 16 }, () => 'x'.repeat(255)).join('/');
      const data = new Uint8Array(maxWriteDataBytes(limits));
      expect(data.length).toBeGreaterThan(0);
      const bytes = encode(writeOp(data, longPath.slice(0, 4096)), limits);
      expect(bytes.length).toBeLessThanOrEqual(maxMessageBytes);
    }
  });
});

describe('decode errors', () => {
  const valid = encode({ type: 'ack', epoch, seq: 42 });

  it.each([
    ['no bytes', new Uint8Array(0), 'ERR_DECODE'],
    // msgpackr reads 0xc1 as a marker value rather than failing; validation then refuses it.
    ['the never-used byte 0xc1', Uint8Array.of(0xc1), 'ERR_BAD_MESSAGE'],
    ['a truncated message', valid.subarray(0, valid.length - 1), 'ERR_DECODE'],
    ['trailing bytes', Uint8Array.of(...valid, 0x00), 'ERR_DECODE'],
    ['two messages', Uint8Array.of(...valid, ...valid), 'ERR_DECODE'],
    ['an unknown extension', Uint8Array.of(0xd4, 0x11, 0x00), 'ERR_DECODE'],
    ['a structured-clone reference', Uint8Array.of(0xd6, 0x70, 0, 0, 0, 1), 'ERR_DECODE'],
    ['a number', raw.pack(42), 'ERR_BAD_MESSAGE'],
    ['an array', raw.pack([1, 2]), 'ERR_BAD_MESSAGE'],
    ['a date', raw.pack(new Date(0)), 'ERR_BAD_MESSAGE'],
    ['a map without type', raw.pack({ seq: 1 }), 'ERR_BAD_MESSAGE'],
    ['an unknown type', raw.pack({ type: 'gossip' }), 'ERR_UNKNOWN_TYPE'],
    ['a type inherited from Object', raw.pack({ type: 'constructor' }), 'ERR_UNKNOWN_TYPE'],
  ] as const)('refuses %s', (_name, bytes, code) => {
    expect(codeOf(() => decode(bytes))).toBe(code);
  });

  it('reads int64-encoded safe integers from other encoders, and refuses unsafe ones', () => {
    const big = new Packr({ useRecords: false, useBigIntExtension: false });
    const ack = (seq: bigint) => big.pack({ type: 'ack', epoch, seq });
    expect(decode(ack(2n ** 40n))).toEqual({ type: 'ack', epoch, seq: 2 ** 40 });
    expect(codeOf(() => decode(ack(2n ** 60n)))).toBe('ERR_BAD_MESSAGE');
  });

  it('refuses a __proto__ key rather than changing the prototype', () => {
    const bytes = raw.pack({ type: 'ack', epoch, seq: 1, ['__proto__']: { polluted: true } });
    expect(codeOf(() => decode(bytes))).toBe('ERR_BAD_MESSAGE');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('throws TypeError for something that is not bytes', () => {
    expect(() => decode('hello' as unknown as Uint8Array)).toThrow(TypeError);
  });
});
