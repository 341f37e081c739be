import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DeltaError,
  type DeltaErrorCode,
  type DeltaFormat,
  delta,
  encodeSignature,
  isDeltaError,
  LIBRSYNC_DELTA_MAGIC,
  MIMIC_DELTA_MAGIC,
  patch,
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

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function flipped(bytes: Uint8Array, at: number, mask: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[at]! ^= mask;
  return out;
}

/** Byte offsets of a mimic delta header. */
const VERSION_AT = 4;
const BASIS_LENGTH_AT = 8;
const BASIS_HASH_AT = 16;
const HEADER_END = 24;

const REFUSALS: readonly DeltaErrorCode[] = [
  'ERR_BAD_DELTA',
  'ERR_TRUNCATED',
  'ERR_BASIS_MISMATCH',
  'ERR_UNSUPPORTED_VERSION',
];

// Random basis, block size 64; the target keeps most blocks, overwrites some bytes, inserts a
// literal and appends a tail, so the delta holds copies and literals of several sizes.
const basis = seededBytes(2000, 7);
const marker = new TextEncoder().encode('<<a literal the basis does not hold>>');
const target = concat([
  basis.subarray(0, 640),
  marker,
  basis.subarray(640, 1300),
  seededBytes(90, 8),
  basis.subarray(1390),
  seededBytes(30, 9),
]);
const sig = signature(basis, { blockSize: 64 });
const deltas: Record<DeltaFormat, Uint8Array> = {
  mimic: delta(sig, target),
  librsync: delta(sig, target, { format: 'librsync' }),
};

describe('the test deltas', () => {
  it('patch correctly and hold copies and literals', () => {
    for (const format of ['mimic', 'librsync'] as const) {
      const d = deltas[format];
      expect(patch(basis, d)).toEqual(target);
      expect(Buffer.from(d).indexOf(Buffer.from(marker))).toBeGreaterThan(0);
      expect(d.length).toBeLessThan(target.length / 2);
    }
    const view = new DataView(deltas.mimic.buffer);
    expect(view.getUint32(0)).toBe(MIMIC_DELTA_MAGIC);
    expect(new DataView(deltas.librsync.buffer).getUint32(0)).toBe(LIBRSYNC_DELTA_MAGIC);
  });
});

describe('patch refuses truncated deltas', () => {
  for (const format of ['mimic', 'librsync'] as const) {
    it(`refuses the ${format} delta cut at every point with ERR_TRUNCATED`, () => {
      const d = deltas[format];
      for (let cut = 0; cut < d.length; cut++) {
        const code = codeOf(() => patch(basis, d.subarray(0, cut)));
        if (cut < 4) expect(['ERR_TRUNCATED', 'ERR_BAD_DELTA'], `cut at ${cut}`).toContain(code);
        else expect(code, `cut at ${cut}`).toBe('ERR_TRUNCATED');
      }
    });
  }

  it('refuses a delta for an empty target cut anywhere', () => {
    const empty = delta(signature(new Uint8Array(0)), new Uint8Array(0));
    expect(patch(new Uint8Array(0), empty)).toEqual(new Uint8Array(0));
    for (let cut = 4; cut < empty.length; cut++) {
      expect(
        codeOf(() => patch(new Uint8Array(0), empty.subarray(0, cut))),
        `cut at ${cut}`,
      ).toBe('ERR_TRUNCATED');
    }
  });
});

describe('patch refuses corrupt deltas', () => {
  it('never returns wrong data when any byte of a mimic delta is flipped', () => {
    const d = deltas.mimic;
    for (let at = 0; at < d.length; at++) {
      for (const mask of [0x01, 0x10, 0x80, 0xff]) {
        const code = codeOf(() => {
          const out = patch(basis, flipped(d, at, mask));
          // Only the basis hash field may change without notice: the result is still verified
          // against the target's length and hash, and is exactly the target.
          expect(at >= BASIS_HASH_AT && at < HEADER_END, `flip of byte ${at} ^ ${mask} went unnoticed`).toBe(
            true,
          );
          expect(out).toEqual(target);
        });
        if (code !== 'no error') expect(REFUSALS, `flip of byte ${at} ^ ${mask}`).toContain(code);
      }
    }
  });

  it('refuses a flip inside literal data with ERR_BAD_DELTA', () => {
    const d = deltas.mimic;
    const start = Buffer.from(d).indexOf(Buffer.from(marker));
    for (let i = 0; i < marker.length; i++) {
      expect(
        codeOf(() => patch(basis, flipped(d, start + i, 0x04))),
        `literal byte ${i}`,
      ).toBe('ERR_BAD_DELTA');
    }
  });

  it('never returns wrong data for random flips in mimic deltas of any data', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 1500 }),
        fc.uint8Array({ maxLength: 1500 }),
        fc.array(fc.record({ at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }), {
          minLength: 1,
          maxLength: 3,
        }),
        (b, t, flips) => {
          const d = Uint8Array.from(delta(signature(b, { blockSize: 16 }), t));
          for (const { at, mask } of flips) d[at % d.length]! ^= mask;
          try {
            expect(patch(b, d)).toEqual(t);
          } catch (err) {
            expect(isDeltaError(err), String(err)).toBe(true);
            expect(REFUSALS).toContain((err as DeltaError).code);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses an unknown format version with ERR_UNSUPPORTED_VERSION', () => {
    for (const version of [0, 2, 0xff]) {
      const d = Uint8Array.from(deltas.mimic);
      d[VERSION_AT] = version;
      expect(
        codeOf(() => patch(basis, d)),
        `version ${version}`,
      ).toBe('ERR_UNSUPPORTED_VERSION');
    }
  });

  it('refuses an unknown magic with ERR_BAD_DELTA', () => {
    for (const format of ['mimic', 'librsync'] as const) {
      for (let at = 0; at < 4; at++) {
        expect(
          codeOf(() => patch(basis, flipped(deltas[format], at, 0x40))),
          `${format} byte ${at}`,
        ).toBe('ERR_BAD_DELTA');
      }
    }
    expect(codeOf(() => patch(basis, encodeSignature(sig)))).toBe('ERR_BAD_DELTA');
    expect(codeOf(() => patch(basis, target))).toBe('ERR_BAD_DELTA');
  });

  it('refuses unknown commands with ERR_BAD_DELTA', () => {
    const mimicHeader = deltas.mimic.subarray(0, HEADER_END);
    for (const op of [0x03, 0x45, 0xff]) {
      expect(
        codeOf(() => patch(basis, concat([mimicHeader, Uint8Array.of(op, 0, 0, 0, 0)]))),
        `op ${op}`,
      ).toBe('ERR_BAD_DELTA');
    }
    const librsyncMagic = deltas.librsync.subarray(0, 4);
    for (const op of [0x55, 0x80, 0xff]) {
      expect(
        codeOf(() => patch(basis, concat([librsyncMagic, Uint8Array.of(op, 0, 0, 0, 0)]))),
        `op ${op}`,
      ).toBe('ERR_BAD_DELTA');
    }
  });

  it('refuses bytes after the end command with ERR_BAD_DELTA', () => {
    for (const format of ['mimic', 'librsync'] as const) {
      const d = deltas[format];
      for (const junk of [Uint8Array.of(0), Uint8Array.of(1, 2, 3), seededBytes(100, 3), d]) {
        expect(
          codeOf(() => patch(basis, concat([d, junk]))),
          `${format} + ${junk.length} bytes`,
        ).toBe('ERR_BAD_DELTA');
      }
    }
  });
});

describe('patch refuses the wrong basis', () => {
  it('refuses a basis of the same length with different content with ERR_BASIS_MISMATCH', () => {
    // Byte 100 lies in a block the delta copies.
    for (const at of [0, 100, 639, 1999]) {
      const wrong = flipped(basis, at, 0x01);
      expect(
        codeOf(() => patch(wrong, deltas.mimic)),
        `basis byte ${at} changed`,
      ).toBe('ERR_BASIS_MISMATCH');
    }
    expect(codeOf(() => patch(seededBytes(basis.length, 99), deltas.mimic))).toBe('ERR_BASIS_MISMATCH');
    expect(codeOf(() => patch(new Uint8Array(basis.length), deltas.mimic))).toBe('ERR_BASIS_MISMATCH');
  });

  it('refuses a basis of another length with ERR_BASIS_MISMATCH', () => {
    for (const wrong of [
      basis.subarray(0, basis.length - 1),
      concat([basis, Uint8Array.of(0)]),
      new Uint8Array(0),
      concat([basis, basis]),
    ]) {
      expect(
        codeOf(() => patch(wrong, deltas.mimic)),
        `basis of ${wrong.length} bytes`,
      ).toBe('ERR_BASIS_MISMATCH');
    }
  });

  it('refuses a librsync delta whose copies reach past the basis with ERR_BASIS_MISMATCH', () => {
    for (const wrong of [basis.subarray(0, 1000), new Uint8Array(0)]) {
      expect(
        codeOf(() => patch(wrong, deltas.librsync)),
        `basis of ${wrong.length} bytes`,
      ).toBe('ERR_BASIS_MISMATCH');
    }
  });

  it('refuses a delta made against a different length before any command is checked', () => {
    const d = Uint8Array.from(deltas.mimic);
    new DataView(d.buffer).setBigUint64(BASIS_LENGTH_AT, BigInt(basis.length + 1));
    expect(codeOf(() => patch(basis, d))).toBe('ERR_BASIS_MISMATCH');
  });
});

describe('patch on random bytes', () => {
  const mimicMagic = deltas.mimic.subarray(0, 4);
  const mimicHeader = deltas.mimic.subarray(0, HEADER_END);
  const librsyncMagic = deltas.librsync.subarray(0, 4);

  it('only ever throws DeltaError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc.uint8Array({ maxLength: 400 }).map((t) => concat([mimicMagic, t])),
          fc.uint8Array({ maxLength: 400 }).map((t) => concat([mimicHeader, t])),
          fc.uint8Array({ maxLength: 400 }).map((t) => concat([librsyncMagic, t])),
        ),
        fc.oneof(fc.constant(basis), fc.uint8Array({ maxLength: 300 })),
        (bytes, b) => {
          try {
            patch(b, bytes);
          } catch (err) {
            expect(isDeltaError(err), String(err)).toBe(true);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('only ever throws DeltaError for librsync command streams', () => {
    // Commands built from the librsync opcode table, with random arguments.
    const commandArb = fc.oneof(
      fc
        .integer({ min: 0x01, max: 0x40 })
        .chain((n) => fc.uint8Array({ maxLength: n }).map((d) => [n, ...d])),
      fc
        .integer({ min: 0x41, max: 0x54 })
        .chain((op) => fc.uint8Array({ maxLength: 16 }).map((d) => [op, ...d])),
      fc.integer({ min: 0x55, max: 0xff }).map((op) => [op]),
    );
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 8 }), fc.boolean(), (commands, end) => {
        const bytes = concat([
          librsyncMagic,
          Uint8Array.from(commands.flat()),
          end ? Uint8Array.of(0) : new Uint8Array(0),
        ]);
        try {
          patch(basis, bytes);
        } catch (err) {
          expect(isDeltaError(err), String(err)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
