import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  contentHash,
  DeltaError,
  type DeltaErrorCode,
  delta,
  hexToHash,
  patch,
  patchFile,
  signature,
  signatureFile,
  writeDeltaFile,
} from './index.js';

/*
 * The file API beyond the round-trip properties: files larger than the read and staging
 * buffers, literals larger than a staging buffer, and failures that must leave nothing behind.
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

async function codeOf(promise: Promise<unknown>): Promise<DeltaErrorCode | 'no error'> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof DeltaError) return err.code;
    throw err;
  }
  return 'no error';
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mimic-delta-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function* inPieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += size) yield bytes.subarray(o, o + size);
}

const MiB = 1024 * 1024;

/**
 * A mimic delta written by hand from the documented format: header, the given commands, end.
 * Used to make commands the matcher would never emit, such as a single 3 MiB literal.
 */
function handMadeDelta(
  basis: Uint8Array,
  commands: readonly ({ copy: number; length: number } | { literal: Uint8Array })[],
  target: Uint8Array,
): Uint8Array {
  const parts: Uint8Array[] = [];
  const header = new DataView(new ArrayBuffer(24));
  header.setUint32(0, 0x4d494d44);
  header.setUint8(4, 1);
  header.setBigUint64(8, BigInt(basis.length));
  header.setBigUint64(16, hexToHash(contentHash(basis)));
  parts.push(new Uint8Array(header.buffer));
  for (const c of commands) {
    if ('copy' in c) {
      const v = new DataView(new ArrayBuffer(13));
      v.setUint8(0, 1);
      v.setBigUint64(1, BigInt(c.copy));
      v.setUint32(9, c.length);
      parts.push(new Uint8Array(v.buffer));
    } else {
      const v = new DataView(new ArrayBuffer(5));
      v.setUint8(0, 2);
      v.setUint32(1, c.literal.length);
      parts.push(new Uint8Array(v.buffer), c.literal);
    }
  }
  const end = new DataView(new ArrayBuffer(17));
  end.setBigUint64(1, BigInt(target.length));
  end.setBigUint64(9, hexToHash(contentHash(target)));
  parts.push(new Uint8Array(end.buffer));
  return concat(parts);
}

describe('files larger than the buffers', () => {
  it('round trips a 9 MiB file with scattered edits, an insertion and a deletion', async () => {
    const dir = await tempDir();
    const basis = seededBytes(9 * MiB, 21);
    const target = concat([
      basis.subarray(0, 2 * MiB),
      seededBytes(3000, 22),
      basis.subarray(2 * MiB, 5 * MiB),
      basis.subarray(5 * MiB + 40_000, 9 * MiB),
      seededBytes(10, 23),
    ]);
    for (let o = 100_000; o < target.length; o += 1_234_567) target.set(seededBytes(64, o), o);
    await writeFile(join(dir, 'basis'), basis);
    await writeFile(join(dir, 'target'), target);

    for (const format of ['mimic', 'librsync'] as const) {
      const sig = await signatureFile(join(dir, 'basis'));
      const size = await writeDeltaFile(sig, join(dir, 'target'), join(dir, `delta.${format}`), { format });
      expect(size).toBeLessThan(target.length / 50);
      const result = await patchFile(
        join(dir, 'basis'),
        join(dir, `delta.${format}`),
        join(dir, `out.${format}`),
      );
      expect(result).toEqual({ length: target.length, hash: hexToHash(contentHash(target)) });
      expectSameBytes(await readFile(join(dir, `out.${format}`)), target);
    }
  });

  it('writes literals larger than the staging buffer, between copies', async () => {
    const dir = await tempDir();
    const basis = seededBytes(3 * MiB + 5, 31);
    const big = seededBytes(3 * MiB + 7, 32);
    const small = seededBytes(1000, 33);
    const target = concat([
      basis.subarray(0, 1000),
      big,
      small,
      basis.subarray(1000, 2 * MiB),
      big,
      basis.subarray(0, 3),
    ]);
    const d = handMadeDelta(
      basis,
      [
        { copy: 0, length: 1000 },
        { literal: big },
        { literal: small },
        { copy: 1000, length: 2 * MiB - 1000 },
        { literal: big },
        { copy: 0, length: 3 },
      ],
      target,
    );
    expectSameBytes(patch(basis, d), target);
    await writeFile(join(dir, 'basis'), basis);
    for (const [name, source] of [
      ['one buffer', d],
      ['64 KiB pieces', inPieces(d, 64 * 1024)],
      ['odd pieces', inPieces(d, 999_999)],
    ] as const) {
      const out = join(dir, `out-${name}`);
      const result = await patchFile(join(dir, 'basis'), source, out);
      expect(result.length, name).toBe(target.length);
      expectSameBytes(await readFile(out), target);
    }
  });
});

describe('patchFile', () => {
  const basis = seededBytes(50_000, 41);
  const target = concat([basis.subarray(0, 20_000), seededBytes(500, 42), basis.subarray(20_000)]);

  async function setUp(): Promise<{ dir: string; basisPath: string; d: Uint8Array }> {
    const dir = await tempDir();
    const basisPath = join(dir, 'basis');
    await writeFile(basisPath, basis);
    return { dir, basisPath, d: delta(signature(basis, { blockSize: 256 }), target) };
  }

  it('patches against an empty basis when given null', async () => {
    const dir = await tempDir();
    const d = delta(signature(new Uint8Array(0)), target);
    await patchFile(null, d, join(dir, 'out'));
    expectSameBytes(await readFile(join(dir, 'out')), target);
  });

  it('can replace its own basis', async () => {
    const { basisPath, d } = await setUp();
    await patchFile(basisPath, d, basisPath);
    expectSameBytes(await readFile(basisPath), target);
  });

  it('replaces an existing output file', async () => {
    const { dir, basisPath, d } = await setUp();
    await writeFile(join(dir, 'out'), 'old content');
    await patchFile(basisPath, d, join(dir, 'out'));
    expectSameBytes(await readFile(join(dir, 'out')), target);
  });

  const failures: [string, (d: Uint8Array) => Uint8Array, Uint8Array, DeltaErrorCode][] = [
    ['a truncated delta', (d) => d.subarray(0, d.length - 1), basis, 'ERR_TRUNCATED'],
    ['a delta cut inside a literal', (d) => d.subarray(0, 200), basis, 'ERR_TRUNCATED'],
    ['a corrupt literal byte', (d) => flipLiteral(d), basis, 'ERR_BAD_DELTA'],
    ['junk after the end', (d) => concat([d, Uint8Array.of(0)]), basis, 'ERR_BAD_DELTA'],
    [
      'a basis of the same length with other content',
      (d) => d,
      seededBytes(basis.length, 43),
      'ERR_BASIS_MISMATCH',
    ],
    ['a shorter basis', (d) => d, basis.subarray(0, 49_999), 'ERR_BASIS_MISMATCH'],
  ];
  for (const [name, corrupt, basisBytes, code] of failures) {
    for (const piece of [0, 1, 7]) {
      it(`refuses ${name} with ${code}, leaving no file behind (${piece ? `${piece}-byte pieces` : 'path'})`, async () => {
        const { dir, d } = await setUp();
        await writeFile(join(dir, 'basis'), basisBytes);
        await writeFile(join(dir, 'delta'), corrupt(d));
        const source = piece ? inPieces(corrupt(d), piece) : join(dir, 'delta');
        expect(await codeOf(patchFile(join(dir, 'basis'), source, join(dir, 'out')))).toBe(code);
        expect((await readdir(dir)).sort()).toEqual(['basis', 'delta']);
      });
    }
  }

  it('leaves an existing output file untouched when it fails', async () => {
    const { dir, basisPath, d } = await setUp();
    await writeFile(join(dir, 'out'), 'old content');
    expect(await codeOf(patchFile(basisPath, d.subarray(0, 100), join(dir, 'out')))).toBe('ERR_TRUNCATED');
    expect(await readFile(join(dir, 'out'), 'utf8')).toBe('old content');
    expect((await readdir(dir)).sort()).toEqual(['basis', 'out']);
  });

  function flipLiteral(d: Uint8Array): Uint8Array {
    const inserted = Buffer.from(target.subarray(20_000, 20_500));
    const at = Buffer.from(d).indexOf(inserted);
    expect(at).toBeGreaterThan(0);
    const out = Uint8Array.from(d);
    out[at + 250]! ^= 0x01;
    return out;
  }
});
