import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DeltaError,
  type DeltaErrorCode,
  decodeSignature,
  delta,
  encodeSignature,
  isDeltaError,
  SIGNATURE_MAGIC,
  signature,
} from './index.js';

function codeOf(fn: () => unknown): DeltaErrorCode | 'no error' {
  try {
    fn();
  } catch (err) {
    if (err instanceof DeltaError) return err.code;
    throw err;
  }
  return 'no error';
}

/** Deterministic bytes (xorshift32), so that failures reproduce. */
function seededBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function withByte(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[at] = value;
  return out;
}

function withUint32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  new DataView(out.buffer).setUint32(at, value);
  return out;
}

function withUint64(bytes: Uint8Array, at: number, value: bigint): Uint8Array {
  const out = Uint8Array.from(bytes);
  new DataView(out.buffer).setBigUint64(at, value);
  return out;
}

// 200 bytes at block size 16: 12 full blocks and an 8-byte tail, 28 + 13 * 12 = 184 bytes.
const basis = seededBytes(200, 1);
const sigBytes = encodeSignature(signature(basis, { blockSize: 16 }));

describe('decodeSignature refuses malformed signatures', () => {
  it('starts from a well-formed signature', () => {
    expect(sigBytes.length).toBe(184);
    expect(decodeSignature(sigBytes).fileLength).toBe(200);
  });

  it('refuses the signature cut at every point with ERR_TRUNCATED', () => {
    for (let cut = 0; cut < sigBytes.length; cut++) {
      const code = codeOf(() => decodeSignature(sigBytes.subarray(0, cut)));
      if (cut < 4) expect(['ERR_TRUNCATED', 'ERR_BAD_SIGNATURE'], `cut at ${cut}`).toContain(code);
      else expect(code, `cut at ${cut}`).toBe('ERR_TRUNCATED');
    }
  });

  it('refuses the signature of an empty basis cut inside its header', () => {
    const empty = encodeSignature(signature(new Uint8Array(0), { blockSize: 16 }));
    expect(empty.length).toBe(28);
    expect(decodeSignature(empty).fileLength).toBe(0);
    for (let cut = 4; cut < empty.length; cut++) {
      expect(
        codeOf(() => decodeSignature(empty.subarray(0, cut))),
        `cut at ${cut}`,
      ).toBe('ERR_TRUNCATED');
    }
  });

  it('refuses a bad magic with ERR_BAD_SIGNATURE', () => {
    for (let i = 0; i < 4; i++) {
      for (const mask of [0x01, 0x20, 0x80, 0xff]) {
        const bytes = withByte(sigBytes, i, sigBytes[i]! ^ mask);
        expect(
          codeOf(() => decodeSignature(bytes)),
          `byte ${i} ^ ${mask}`,
        ).toBe('ERR_BAD_SIGNATURE');
      }
    }
    expect(codeOf(() => decodeSignature(new Uint8Array(184)))).toBe('ERR_BAD_SIGNATURE');
  });

  it('refuses a delta or an rdiff signature given as a signature', () => {
    const d = delta(signature(basis), basis);
    expect(codeOf(() => decodeSignature(d))).toBe('ERR_BAD_SIGNATURE');
    // librsync's blake2 signature magic, followed by a plausible header.
    const rdiffSig = Uint8Array.of(0x72, 0x73, 0x01, 0x37, 0, 0, 8, 0, 0, 0, 0, 32);
    expect(codeOf(() => decodeSignature(rdiffSig))).toBe('ERR_BAD_SIGNATURE');
  });

  it('refuses an unknown format version with ERR_UNSUPPORTED_VERSION', () => {
    expect(new DataView(sigBytes.buffer).getUint32(0)).toBe(SIGNATURE_MAGIC);
    for (const version of [0, 2, 3, 0x7f, 0xff]) {
      expect(
        codeOf(() => decodeSignature(withByte(sigBytes, 4, version))),
        `version ${version}`,
      ).toBe('ERR_UNSUPPORTED_VERSION');
    }
  });

  it('refuses trailing bytes with ERR_BAD_SIGNATURE', () => {
    for (const extra of [1, 11, 12, 13, 100]) {
      const bytes = new Uint8Array(sigBytes.length + extra);
      bytes.set(sigBytes);
      expect(
        codeOf(() => decodeSignature(bytes)),
        `${extra} extra bytes`,
      ).toBe('ERR_BAD_SIGNATURE');
    }
  });

  it('refuses a header whose sizes disagree with the body', () => {
    // A longer declared file needs more blocks than are present (13 blocks hold 193..208 bytes).
    expect(codeOf(() => decodeSignature(withUint64(sigBytes, 12, 209n)))).toBe('ERR_TRUNCATED');
    expect(codeOf(() => decodeSignature(withUint64(sigBytes, 12, 1n << 40n)))).toBe('ERR_TRUNCATED');
    // A shorter one leaves blocks over.
    expect(codeOf(() => decodeSignature(withUint64(sigBytes, 12, 100n)))).toBe('ERR_BAD_SIGNATURE');
    // Larger blocks: fewer of them than the body holds.
    expect(codeOf(() => decodeSignature(withUint32(sigBytes, 8, 64)))).toBe('ERR_BAD_SIGNATURE');
  });

  it('refuses out-of-range header fields with ERR_BAD_SIGNATURE', () => {
    for (const blockSize of [0, 1, 15, (1 << 24) + 1, 0xffffffff]) {
      expect(
        codeOf(() => decodeSignature(withUint32(sigBytes, 8, blockSize))),
        `block size ${blockSize}`,
      ).toBe('ERR_BAD_SIGNATURE');
    }
    expect(codeOf(() => decodeSignature(withUint64(sigBytes, 12, 1n << 53n)))).toBe('ERR_BAD_SIGNATURE');
    expect(codeOf(() => decodeSignature(withUint64(sigBytes, 12, 0xffffffffffffffffn)))).toBe(
      'ERR_BAD_SIGNATURE',
    );
    for (const strongBytes of [0, 4, 16, 32]) {
      expect(codeOf(() => decodeSignature(withByte(sigBytes, 5, strongBytes)))).toBe('ERR_BAD_SIGNATURE');
    }
    expect(codeOf(() => decodeSignature(withByte(sigBytes, 6, 1)))).toBe('ERR_BAD_SIGNATURE');
    expect(codeOf(() => decodeSignature(withByte(sigBytes, 7, 1)))).toBe('ERR_BAD_SIGNATURE');
  });

  it('throws only DeltaError for random bytes, with or without a valid header start', () => {
    const headerStart = sigBytes.subarray(0, 8);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc
            .uint8Array({ maxLength: 300 })
            .map((tail) => Uint8Array.from([...sigBytes.subarray(0, 4), ...tail])),
          fc.uint8Array({ maxLength: 300 }).map((tail) => Uint8Array.from([...headerStart, ...tail])),
        ),
        (bytes) => {
          try {
            const sig = decodeSignature(bytes);
            expect(bytes.length).toBe(28 + 12 * sig.weak.length);
          } catch (err) {
            expect(isDeltaError(err), String(err)).toBe(true);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('signature refuses bad options', () => {
  it('refuses block sizes out of range with ERR_INVALID_ARGUMENT', () => {
    for (const blockSize of [0, 1, 15, 16.5, -16, Number.NaN, (1 << 24) + 1]) {
      expect(
        codeOf(() => signature(basis, { blockSize })),
        `block size ${blockSize}`,
      ).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(codeOf(() => signature(basis, { blockSize: 16 }))).toBe('no error');
    expect(codeOf(() => signature(basis, { blockSize: 1 << 24 }))).toBe('no error');
  });
});
