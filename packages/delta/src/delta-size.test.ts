import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DeltaFormat, defaultBlockSize, delta, patch, signature } from './index.js';

/*
 * Deltas carry only what changed, and repetitive data (long runs of zeros, a short pattern
 * repeated for megabytes) still yields a correct delta. Sizes only: no timing here.
 */

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

/** Byte-for-byte equality without building a diff of megabytes. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (!a.equals(b)) {
    let i = 0;
    while (a[i] === b[i]) i++;
    expect.fail(`bytes differ first at offset ${i}`);
  }
}

function editOnce(basis: Uint8Array, kind: 'insert' | 'overwrite' | 'delete', at: number, bytes: Uint8Array) {
  if (kind === 'insert') return concat([basis.subarray(0, at), bytes, basis.subarray(at)]);
  if (kind === 'delete') return concat([basis.subarray(0, at), basis.subarray(at + bytes.length)]);
  const out = Uint8Array.from(basis);
  out.set(bytes.subarray(0, basis.length - at), at);
  return out;
}

const MiB = 1024 * 1024;
const FORMATS: readonly DeltaFormat[] = ['mimic', 'librsync'];
const formatArb = fc.constantFrom<DeltaFormat>(...FORMATS);
/** Header, trailer and command bytes around the data a delta carries. */
const OVERHEAD = 128;

describe('deltas are compact', () => {
  const basis = seededBytes(MiB, 42);
  const sig = signature(basis);
  const blockSize = sig.blockSize;

  it('uses the default block size for 1 MiB', () => {
    expect(blockSize).toBe(defaultBlockSize(MiB));
    expect(blockSize).toBe(1024);
  });

  for (const format of FORMATS) {
    it(`an identical 1 MiB file gives a delta under 1% of it (${format})`, () => {
      const d = delta(sig, basis, { format });
      expect(d.length).toBeLessThan(MiB / 100);
      expectSameBytes(patch(basis, d), basis);
    });

    it(`1 MiB of zeros against itself gives a delta under 1% (${format})`, () => {
      const zeros = new Uint8Array(MiB);
      const d = delta(signature(zeros), zeros, { format });
      expect(d.length).toBeLessThan(MiB / 100);
      expectSameBytes(patch(zeros, d), zeros);
    });

    // Offsets in the first block matter: there the target does not start with basis block 0.
    for (const at of [0, 1, 500, blockSize - 50, 5 * blockSize, 700_001, MiB - 100]) {
      it(`a 100-byte overwrite at ${at} in 1 MiB gives a delta under 3 blocks (${format})`, () => {
        const target = Uint8Array.from(basis);
        target.set(seededBytes(100, at + 1), at);
        const d = delta(sig, target, { format });
        expect(d.length).toBeLessThan(3 * blockSize + OVERHEAD);
        expectSameBytes(patch(basis, d), target);
      });
    }

    for (const at of [0, 12_345, 500_000, MiB - 100]) {
      it(`a 100-byte insertion or deletion at ${at} in 1 MiB gives a delta under 3 blocks (${format})`, () => {
        const inserted = concat([basis.subarray(0, at), seededBytes(100, 3), basis.subarray(at)]);
        const deleted = concat([basis.subarray(0, at), basis.subarray(at + 100)]);
        for (const [name, target] of [
          ['insertion', inserted],
          ['deletion', deleted],
        ] as const) {
          const d = delta(sig, target, { format });
          expect(d.length, name).toBeLessThan(3 * blockSize + OVERHEAD);
          expectSameBytes(patch(basis, d), target);
        }
      });
    }

    it(`blocks that moved are copied, not sent (${format})`, () => {
      const cut = 64 * blockSize;
      const swapped = concat([basis.subarray(cut), basis.subarray(0, cut)]);
      const d = delta(sig, swapped, { format });
      expect(d.length).toBeLessThan(MiB / 100);
      expectSameBytes(patch(basis, d), swapped);
    });
  }

  it('a single small edit anywhere costs at most the new bytes and two blocks', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 16, max: 64 }).chain((blockSize) =>
          fc.record({
            blockSize: fc.constant(blockSize),
            // Random (not repetitive) data, whose blocks can only match where they came from.
            basis: fc
              .record({ length: fc.integer({ min: 4 * blockSize, max: 40 * blockSize }), seed: fc.nat() })
              .map(({ length, seed }) => seededBytes(length, seed + 1)),
            kind: fc.constantFrom('insert' as const, 'overwrite' as const, 'delete' as const),
            at: fc.nat(),
            bytes: fc.uint8Array({ minLength: 1, maxLength: 50 }),
          }),
        ),
        formatArb,
        ({ blockSize, basis, kind, at, bytes }, format) => {
          const target = editOnce(basis, kind, at % (basis.length + 1), bytes);
          const d = delta(signature(basis, { blockSize }), target, { format });
          expect(d.length).toBeLessThanOrEqual(bytes.length + 2 * blockSize + OVERHEAD);
          expect(patch(basis, d)).toEqual(target);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('repetitive data', () => {
  it('8 MiB of zeros and 8 MiB of a repeated 1 KiB pattern, edited, round trip', () => {
    const half = 8 * MiB;
    const pattern = seededBytes(1024, 5);
    const basis = new Uint8Array(2 * half);
    for (let o = half; o < basis.length; o += pattern.length) basis.set(pattern, o);

    const target = concat([
      basis.subarray(0, 3 * MiB),
      Uint8Array.of(1, 2, 3),
      basis.subarray(3 * MiB, 6 * MiB + 17),
      basis.subarray(6 * MiB + 5017, half + 333),
      seededBytes(777, 6),
      basis.subarray(half + 333, 12 * MiB),
      pattern.subarray(100, 600),
      basis.subarray(12 * MiB),
      new Uint8Array(4096),
    ]);
    target[5 * MiB] = 0xff;
    target[14 * MiB]! ^= 0x10;

    for (const format of FORMATS) {
      for (const options of [{}, { blockSize: 1000 }, { blockSize: 64 }]) {
        const sig = signature(basis, options);
        expectSameBytes(patch(basis, delta(sig, target, { format })), target);
      }
    }
  });

  it('a target of zeros against a basis of a repeated pattern, and the reverse', () => {
    const pattern = seededBytes(1024, 11);
    const patterned = new Uint8Array(2 * MiB);
    for (let o = 0; o < patterned.length; o += pattern.length) patterned.set(pattern, o);
    const zeros = new Uint8Array(2 * MiB + 3);
    for (const format of FORMATS) {
      expectSameBytes(patch(patterned, delta(signature(patterned), zeros, { format })), zeros);
      expectSameBytes(patch(zeros, delta(signature(zeros), patterned, { format })), patterned);
    }
  });
});
