import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  contentHash,
  DeltaDecoder,
  type DeltaFormat,
  decodeSignature,
  delta,
  deltaFile,
  deltaStream,
  encodeSignature,
  hexToHash,
  MIN_BLOCK_SIZE,
  patch,
  patchFile,
  SignatureBuilder,
  signature,
  signatureFile,
  writeDeltaFile,
  writeSignatureFile,
} from './index.js';

/*
 * signature → delta → patch gives back the target, whatever the basis (empty, one byte,
 * shorter than a block, exactly one block, many small blocks, zeros, short repeated patterns)
 * and whatever edits turned it into the target.
 */

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function repeat(pattern: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = pattern[i % pattern.length]!;
  return out;
}

/** Splits `bytes` at the given points (taken modulo its length + 1). */
function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
  const parts: Uint8Array[] = [];
  let start = 0;
  for (const p of points) {
    parts.push(bytes.subarray(start, p));
    start = p;
  }
  parts.push(bytes.subarray(start));
  return parts;
}

async function* chunksOf(parts: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(Uint8Array.from(c));
  return concat(parts);
}

const fillArb = (max: number) =>
  fc
    .record({ byte: fc.integer({ min: 0, max: 255 }), length: fc.integer({ min: 0, max }) })
    .map(({ byte, length }) => new Uint8Array(length).fill(byte));

const patternArb = (max: number) =>
  fc
    .record({ pattern: fc.uint8Array({ minLength: 1, maxLength: 8 }), length: fc.integer({ min: 0, max }) })
    .map(({ pattern, length }) => repeat(pattern, length));

/** Bases sized in blocks of `unit` bytes. */
function basisArb(unit: number, maxBlocks: number): fc.Arbitrary<Uint8Array> {
  const most = unit * maxBlocks;
  return fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.uint8Array({ minLength: 1, maxLength: 1 }),
    fc.uint8Array({ minLength: 2, maxLength: unit - 1 }),
    fc.uint8Array({ minLength: unit, maxLength: unit }),
    fc
      .integer({ min: 2, max: maxBlocks })
      .chain((k) => fc.uint8Array({ minLength: k * unit, maxLength: k * unit })),
    fc.uint8Array({ minLength: unit + 1, maxLength: most }),
    fillArb(most),
    patternArb(most),
    fc
      .array(fc.oneof(fc.uint8Array({ maxLength: 3 * unit }), fillArb(3 * unit), patternArb(3 * unit)), {
        maxLength: 6,
      })
      .map(concat),
  );
}

type Edit =
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'overwrite'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'move'; readonly from: number; readonly length: number; readonly to: number }
  | { readonly kind: 'append'; readonly bytes: Uint8Array }
  | { readonly kind: 'truncate'; readonly keep: number };

const editBytesArb = fc.oneof(fc.uint8Array({ maxLength: 150 }), fillArb(150), patternArb(150));
const posArb = fc.nat();
const lengthArb = fc.nat({ max: 300 });

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: posArb, bytes: editBytesArb }),
  fc.record({ kind: fc.constant('delete' as const), at: posArb, length: lengthArb }),
  fc.record({ kind: fc.constant('overwrite' as const), at: posArb, bytes: editBytesArb }),
  fc.record({ kind: fc.constant('move' as const), from: posArb, length: lengthArb, to: posArb }),
  fc.record({ kind: fc.constant('append' as const), bytes: editBytesArb }),
  fc.record({ kind: fc.constant('truncate' as const), keep: posArb }),
);

function applyEdit(data: Uint8Array, e: Edit): Uint8Array {
  const n = data.length;
  switch (e.kind) {
    case 'insert': {
      const at = e.at % (n + 1);
      return concat([data.subarray(0, at), e.bytes, data.subarray(at)]);
    }
    case 'delete': {
      const at = e.at % (n + 1);
      return concat([data.subarray(0, at), data.subarray(at + e.length)]);
    }
    case 'overwrite': {
      const at = e.at % (n + 1);
      const out = Uint8Array.from(data);
      out.set(e.bytes.subarray(0, n - at), at);
      return out;
    }
    case 'move': {
      const from = e.from % (n + 1);
      const piece = data.subarray(from, from + e.length);
      const rest = concat([data.subarray(0, from), data.subarray(from + e.length)]);
      const to = e.to % (rest.length + 1);
      return concat([rest.subarray(0, to), piece, rest.subarray(to)]);
    }
    case 'append':
      return concat([data, e.bytes]);
    case 'truncate':
      return data.subarray(0, e.keep % (n + 1));
  }
}

interface Case {
  readonly blockSize: number | undefined;
  readonly basis: Uint8Array;
  /** The edit script; empty means the target is the basis itself. */
  readonly edits: readonly Edit[];
  readonly target: Uint8Array;
}

/** Small explicit block sizes (so edits cross block boundaries) and now and then the default. */
const caseArb: fc.Arbitrary<Case> = fc
  .oneof(
    { weight: 4, arbitrary: fc.integer({ min: 16, max: 64 }) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  )
  .chain((blockSize) =>
    fc.record({
      blockSize: fc.constant(blockSize),
      basis: blockSize === undefined ? basisArb(MIN_BLOCK_SIZE, 6) : basisArb(blockSize, 40),
      edits: fc.array(editArb, { maxLength: 6 }),
    }),
  )
  .map((c) => ({ ...c, target: c.edits.reduce(applyEdit, c.basis) }));

const formatArb = fc.constantFrom<DeltaFormat>('mimic', 'librsync');

function sigOptions(blockSize: number | undefined) {
  return blockSize === undefined ? {} : { blockSize };
}

describe('signature → delta → patch on buffers', () => {
  for (const format of ['mimic', 'librsync'] as const) {
    it(`patch(basis, delta(signature(basis), target)) equals target (${format} format)`, () => {
      fc.assert(
        fc.property(caseArb, ({ blockSize, basis, target }) => {
          const sig = signature(basis, sigOptions(blockSize));
          expect(sig.blockSize).toBe(blockSize ?? MIN_BLOCK_SIZE);
          expect(sig.fileLength).toBe(basis.length);
          const d = delta(sig, target, { format });
          expect(patch(basis, d)).toEqual(target);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('works from a signature that went through encodeSignature/decodeSignature', () => {
    fc.assert(
      fc.property(caseArb, formatArb, ({ blockSize, basis, target }, format) => {
        const sig = decodeSignature(encodeSignature(signature(basis, sigOptions(blockSize))));
        expect(patch(basis, delta(sig, target, { format }))).toEqual(target);
      }),
      { numRuns: 100 },
    );
  });

  it('turns any basis into an unrelated target', () => {
    fc.assert(
      fc.property(
        basisArb(16, 40),
        fc.oneof(fc.uint8Array({ maxLength: 700 }), fillArb(700), patternArb(700)),
        formatArb,
        (basis, target, format) => {
          expect(patch(basis, delta(signature(basis, { blockSize: 16 }), target, { format }))).toEqual(
            target,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  const bs = 32;
  const block = Uint8Array.from({ length: bs }, (_, i) => (i * 37 + 11) & 0xff);
  const named: [string, Uint8Array, Uint8Array][] = [
    ['empty to empty', new Uint8Array(0), new Uint8Array(0)],
    ['empty to data', new Uint8Array(0), block],
    ['data to empty', block, new Uint8Array(0)],
    ['one byte to the same byte', Uint8Array.of(7), Uint8Array.of(7)],
    ['one byte to another', Uint8Array.of(7), Uint8Array.of(8)],
    [
      'short basis, target inside a longer one',
      block.subarray(0, 9),
      concat([block, block.subarray(0, 9), block]),
    ],
    ['exactly one block, identical', block, block],
    ['exactly one block, one byte appended', block, concat([block, Uint8Array.of(1)])],
    ['exactly one block, first byte dropped', block, block.subarray(1)],
    [
      'one block and a tail, tail moved to the front',
      concat([block, block.subarray(0, 5)]),
      concat([block.subarray(0, 5), block]),
    ],
    ['zeros shifted by one byte', new Uint8Array(10 * bs), new Uint8Array(10 * bs + 1)],
    ['zeros to a pattern', new Uint8Array(10 * bs), repeat(Uint8Array.of(1, 2, 3), 10 * bs)],
    [
      'pattern shifted by one byte',
      repeat(Uint8Array.of(1, 2, 3), 10 * bs),
      repeat(Uint8Array.of(2, 3, 1), 10 * bs),
    ],
    [
      'blocks in reverse order',
      concat([block, block.map((b) => b ^ 1), block.map((b) => b ^ 2)]),
      concat([block.map((b) => b ^ 2), block.map((b) => b ^ 1), block]),
    ],
  ];
  for (const [name, basis, target] of named) {
    it(`round trips: ${name}`, () => {
      for (const format of ['mimic', 'librsync'] as const) {
        for (const options of [{ blockSize: bs }, { blockSize: 16 }, {}]) {
          expect(patch(basis, delta(signature(basis, options), target, { format }))).toEqual(target);
        }
      }
    });
  }
});

describe('chunking does not change results', () => {
  it('SignatureBuilder fed in arbitrary chunks equals signature()', () => {
    fc.assert(
      fc.property(caseArb, fc.array(fc.nat(), { maxLength: 8 }), ({ blockSize, basis }, cuts) => {
        const builder = new SignatureBuilder(basis.length, sigOptions(blockSize));
        for (const part of splitAt(basis, cuts)) builder.update(part);
        expect(builder.finish()).toEqual(signature(basis, sigOptions(blockSize)));
      }),
      { numRuns: 200 },
    );
  });

  it('deltaStream fed the target in arbitrary chunks makes a delta that patches to the target', async () => {
    await fc.assert(
      fc.asyncProperty(
        caseArb,
        formatArb,
        fc.array(fc.nat(), { maxLength: 8 }),
        async ({ blockSize, basis, target }, format, cuts) => {
          const sig = signature(basis, sigOptions(blockSize));
          const d = await collect(deltaStream(sig, chunksOf(splitAt(target, cuts)), { format }));
          expect(patch(basis, d)).toEqual(target);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('DeltaDecoder fed the delta in arbitrary pieces yields commands that rebuild the target', () => {
    fc.assert(
      fc.property(
        caseArb,
        formatArb,
        fc.array(fc.nat(), { maxLength: 12 }),
        ({ blockSize, basis, target }, format, cuts) => {
          const d = delta(signature(basis, sigOptions(blockSize)), target, { format });
          const decoder = new DeltaDecoder();
          const parts: Uint8Array[] = [];
          for (const piece of splitAt(d, cuts)) {
            for (const c of decoder.push(piece)) {
              parts.push(
                c.type === 'copy' ? basis.subarray(c.offset, c.offset + c.length) : Uint8Array.from(c.data),
              );
            }
          }
          decoder.end();
          expect(decoder.done).toBe(true);
          expect(decoder.format).toBe(format);
          expect(concat(parts)).toEqual(target);
          if (format === 'mimic') {
            expect(decoder.basis).toEqual({ length: basis.length, hash: hexToHash(contentHash(basis)) });
            expect(decoder.trailer).toEqual({
              targetLength: target.length,
              targetHash: hexToHash(contentHash(target)),
            });
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('signature codec', () => {
  it('decodeSignature(encodeSignature(sig)) equals sig', () => {
    fc.assert(
      fc.property(caseArb, ({ blockSize, basis }) => {
        const sig = signature(basis, sigOptions(blockSize));
        const bytes = encodeSignature(sig);
        expect(bytes.length).toBe(28 + 12 * Math.ceil(basis.length / sig.blockSize));
        expect(decodeSignature(bytes)).toEqual(sig);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes a signature that sits at an odd offset inside a larger buffer', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 1, max: 15 }), ({ blockSize, basis }, offset) => {
        const sig = signature(basis, sigOptions(blockSize));
        const bytes = encodeSignature(sig);
        const host = new Uint8Array(offset + bytes.length + 7).fill(0xee);
        host.set(bytes, offset);
        expect(decodeSignature(host.subarray(offset, offset + bytes.length))).toEqual(sig);
        expect(decodeSignature(Buffer.from(bytes))).toEqual(sig);
      }),
      { numRuns: 100 },
    );
  });
});

describe('signature → delta → patch on files', () => {
  type Source = 'path' | 'bytes' | 'chunks';

  it('signatureFile, writeDeltaFile/deltaFile and patchFile rebuild the target', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mimic-delta-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        caseArb,
        formatArb,
        fc.constantFrom<Source>('path', 'bytes', 'chunks'),
        fc.array(fc.nat(), { maxLength: 6 }),
        async ({ blockSize, basis, target }, format, source, cuts) => {
          const at = (name: string) => join(dir, `${run}-${name}`);
          run++;
          await writeFile(at('basis'), basis);
          await writeFile(at('target'), target);

          const sig = await signatureFile(at('basis'), sigOptions(blockSize));
          expect(sig).toEqual(signature(basis, sigOptions(blockSize)));
          await writeSignatureFile(sig, at('sig'));
          expect(decodeSignature(await readFile(at('sig')))).toEqual(sig);

          const size = await writeDeltaFile(sig, at('target'), at('delta'), { format });
          const written = new Uint8Array(await readFile(at('delta')));
          expect(written.length).toBe(size);
          expect(await collect(deltaFile(sig, at('target'), { format }))).toEqual(written);
          expect(patch(basis, written)).toEqual(target);

          const deltaSource =
            source === 'path' ? at('delta') : source === 'bytes' ? written : chunksOf(splitAt(written, cuts));
          const result = await patchFile(at('basis'), deltaSource, at('out'));
          expect(new Uint8Array(await readFile(at('out')))).toEqual(target);
          expect(result).toEqual({ length: target.length, hash: hexToHash(contentHash(target)) });
        },
      ),
      { numRuns: 30 },
    );
  });
});
