import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { delta, encodeSignature, LIBRSYNC_DELTA_MAGIC, MIMIC_DELTA_MAGIC, signature } from '@mimic/delta';
import { describe, expect, it } from 'vitest';
import { concat, firstDifference, scatterEdits, seededBytes } from './helpers/bytes.js';
import { mimic, type RunResult } from './helpers/run.js';
import { listDir, makeTempDir } from './helpers/temp-dir.js';

/*
 * The real `mimic signature|delta|patch` commands, spawned in a temp directory with relative
 * file names. A failure must exit non-zero, print one stderr line naming the offending file
 * and a bracketed code, and leave no output or temp file behind.
 */

async function writeFiles(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
}

async function bytesOf(dir: string, name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(dir, name)));
}

function magicOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
}

function expectSuccess(r: RunResult): void {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

interface Refusal {
  /** What the one stderr line must name: a file name as given on the command line. */
  readonly names: string;
  readonly code: string;
  /** Every file the directory may hold afterwards. */
  readonly inputs: readonly string[];
}

async function expectRefusal(r: RunResult, dir: string, { names, code, inputs }: Refusal): Promise<void> {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stderr, 'exactly one line on stderr').toMatch(/^[^\n]+\n$/);
  expect(r.stderr).toContain(names);
  expect(r.stderr).toContain(`[${code}]`);
  expect(await listDir(dir)).toEqual([...inputs].sort());
}

const basis = seededBytes(300 * 1024, 1);
const marker = new TextEncoder().encode('~~ this literal is new in the target ~~');
const target = concat([
  scatterEdits(basis.subarray(0, 100_000), 40_000, 50, 2),
  marker,
  basis.subarray(100_000, 250_000),
  basis.subarray(260_000),
  seededBytes(77, 3),
]);

describe('mimic signature, delta and patch round trip', () => {
  const cases: [string, Uint8Array, Uint8Array, string[]][] = [
    ['an empty basis to a small file', new Uint8Array(0), new TextEncoder().encode('hello, mirror\n'), []],
    ['a small file to an empty one', new TextEncoder().encode('hello, mirror\n'), new Uint8Array(0), []],
    ['300 KiB with edits', basis, target, []],
    ['300 KiB with edits, 64-byte blocks', basis, target, ['--block-size', '64']],
  ];
  for (const [name, basisBytes, targetBytes, sigArgs] of cases) {
    it(`rebuilds the new file: ${name}`, async () => {
      const dir = await makeTempDir();
      await writeFiles(dir, { 'old.bin': basisBytes, 'new.bin': targetBytes });
      expectSuccess(await mimic(['signature', ...sigArgs, 'old.bin', 'old.sig'], dir));
      expectSuccess(await mimic(['delta', 'old.sig', 'new.bin', 'new.delta'], dir));
      const d = await bytesOf(dir, 'new.delta');
      expect(magicOf(d)).toBe(MIMIC_DELTA_MAGIC);
      if (targetBytes.length > 100_000) expect(d.length).toBeLessThan(targetBytes.length / 5);
      expectSuccess(await mimic(['patch', 'old.bin', 'new.delta', 'out.bin'], dir));
      expect(firstDifference(await bytesOf(dir, 'out.bin'), targetBytes)).toBeUndefined();
      expect(await listDir(dir)).toEqual(['new.bin', 'new.delta', 'old.bin', 'old.sig', 'out.bin']);
    });
  }

  it('writes and reads librsync deltas with --format librsync', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'old.bin': basis, 'new.bin': target });
    expectSuccess(await mimic(['signature', 'old.bin', 'old.sig'], dir));
    expectSuccess(await mimic(['delta', '--format', 'librsync', 'old.sig', 'new.bin', 'new.delta'], dir));
    expect(magicOf(await bytesOf(dir, 'new.delta'))).toBe(LIBRSYNC_DELTA_MAGIC);
    expectSuccess(await mimic(['patch', 'old.bin', 'new.delta', 'out.bin'], dir));
    expect(firstDifference(await bytesOf(dir, 'out.bin'), target)).toBeUndefined();
  });

  it('replaces an existing output file', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, {
      'old.bin': basis,
      'new.delta': delta(signature(basis), target),
      'out.bin': 'stale',
    });
    expectSuccess(await mimic(['patch', 'old.bin', 'new.delta', 'out.bin'], dir));
    expect(firstDifference(await bytesOf(dir, 'out.bin'), target)).toBeUndefined();
  });
});

describe('mimic refuses bad input', () => {
  const sigBytes = encodeSignature(signature(basis));
  const deltaBytes = delta(signature(basis), target);

  function withFlip(bytes: Uint8Array, at: number): Uint8Array {
    const out = Uint8Array.from(bytes);
    out[at]! ^= 0x01;
    return out;
  }

  it('patch: a missing basis', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'delta.bin': deltaBytes });
    const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'out.bin'], dir);
    await expectRefusal(r, dir, { names: 'basis.bin', code: 'ENOENT', inputs: ['delta.bin'] });
  });

  it('patch: a missing delta', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.bin': basis });
    const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'out.bin'], dir);
    await expectRefusal(r, dir, { names: 'delta.bin', code: 'ENOENT', inputs: ['basis.bin'] });
  });

  for (const cut of [2, 28 + 12 * 10 + 5]) {
    it(`delta: a signature truncated to ${cut} bytes`, async () => {
      const dir = await makeTempDir();
      await writeFiles(dir, { 'basis.sig': sigBytes.subarray(0, cut), 'new.bin': target });
      const r = await mimic(['delta', 'basis.sig', 'new.bin', 'out.delta'], dir);
      await expectRefusal(r, dir, {
        names: 'basis.sig',
        code: 'ERR_TRUNCATED',
        inputs: ['basis.sig', 'new.bin'],
      });
    });
  }

  it('delta: a signature with a corrupt magic', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.sig': withFlip(sigBytes, 1), 'new.bin': target });
    const r = await mimic(['delta', 'basis.sig', 'new.bin', 'out.delta'], dir);
    await expectRefusal(r, dir, {
      names: 'basis.sig',
      code: 'ERR_BAD_SIGNATURE',
      inputs: ['basis.sig', 'new.bin'],
    });
  });

  it('delta: a signature of an unknown version', async () => {
    const dir = await makeTempDir();
    const future = Uint8Array.from(sigBytes);
    future[4] = 2;
    await writeFiles(dir, { 'basis.sig': future, 'new.bin': target });
    const r = await mimic(['delta', 'basis.sig', 'new.bin', 'out.delta'], dir);
    await expectRefusal(r, dir, {
      names: 'basis.sig',
      code: 'ERR_UNSUPPORTED_VERSION',
      inputs: ['basis.sig', 'new.bin'],
    });
  });

  it('delta: a missing new file', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.sig': sigBytes });
    const r = await mimic(['delta', 'basis.sig', 'new.bin', 'out.delta'], dir);
    await expectRefusal(r, dir, { names: 'new.bin', code: 'ENOENT', inputs: ['basis.sig'] });
  });

  it('signature: a missing basis', async () => {
    const dir = await makeTempDir();
    const r = await mimic(['signature', 'basis.bin', 'basis.sig'], dir);
    await expectRefusal(r, dir, { names: 'basis.bin', code: 'ENOENT', inputs: [] });
  });

  it('signature: a block size out of range', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.bin': basis });
    const r = await mimic(['signature', '--block-size', '3', 'basis.bin', 'basis.sig'], dir);
    await expectRefusal(r, dir, { names: 'basis.bin', code: 'ERR_INVALID_ARGUMENT', inputs: ['basis.bin'] });
  });

  for (const cut of [3, deltaBytes.length - 1]) {
    it(`patch: a delta truncated to ${cut} bytes`, async () => {
      const dir = await makeTempDir();
      await writeFiles(dir, { 'basis.bin': basis, 'delta.bin': deltaBytes.subarray(0, cut) });
      const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'out.bin'], dir);
      await expectRefusal(r, dir, {
        names: 'delta.bin',
        code: 'ERR_TRUNCATED',
        inputs: ['basis.bin', 'delta.bin'],
      });
    });
  }

  it('patch: a corrupt byte in a literal', async () => {
    const dir = await makeTempDir();
    const at = Buffer.from(deltaBytes).indexOf(Buffer.from(marker));
    expect(at).toBeGreaterThan(0);
    await writeFiles(dir, { 'basis.bin': basis, 'delta.bin': withFlip(deltaBytes, at + 10) });
    const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'out.bin'], dir);
    await expectRefusal(r, dir, {
      names: 'delta.bin',
      code: 'ERR_BAD_DELTA',
      inputs: ['basis.bin', 'delta.bin'],
    });
  });

  it('patch: bytes after the end of the delta', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.bin': basis, 'delta.bin': concat([deltaBytes, Uint8Array.of(0)]) });
    const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'out.bin'], dir);
    await expectRefusal(r, dir, {
      names: 'delta.bin',
      code: 'ERR_BAD_DELTA',
      inputs: ['basis.bin', 'delta.bin'],
    });
  });

  it('patch: the wrong basis, of the same length', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.bin': withFlip(basis, 5000), 'delta.bin': deltaBytes });
    const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'out.bin'], dir);
    await expectRefusal(r, dir, {
      names: 'basis.bin',
      code: 'ERR_BASIS_MISMATCH',
      inputs: ['basis.bin', 'delta.bin'],
    });
  });

  it('patch: the wrong basis, of another length', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.bin': basis.subarray(0, 1000), 'delta.bin': deltaBytes });
    const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'out.bin'], dir);
    await expectRefusal(r, dir, {
      names: 'basis.bin',
      code: 'ERR_BASIS_MISMATCH',
      inputs: ['basis.bin', 'delta.bin'],
    });
  });

  it('patch: an output path in a directory that does not exist', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.bin': basis, 'delta.bin': deltaBytes });
    const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'no-such-dir/out.bin'], dir);
    await expectRefusal(r, dir, {
      names: 'no-such-dir/out.bin',
      code: 'ENOENT',
      inputs: ['basis.bin', 'delta.bin'],
    });
  });

  it('patch: a failure leaves an existing output file untouched', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, {
      'basis.bin': basis,
      'delta.bin': deltaBytes.subarray(0, 100),
      'out.bin': 'keep me',
    });
    const r = await mimic(['patch', 'basis.bin', 'delta.bin', 'out.bin'], dir);
    await expectRefusal(r, dir, {
      names: 'delta.bin',
      code: 'ERR_TRUNCATED',
      inputs: ['basis.bin', 'delta.bin', 'out.bin'],
    });
    expect(await readFile(join(dir, 'out.bin'), 'utf8')).toBe('keep me');
  });

  it('delta: an unknown --format', async () => {
    const dir = await makeTempDir();
    await writeFiles(dir, { 'basis.sig': sigBytes, 'new.bin': target });
    const r = await mimic(['delta', '--format', 'zip', 'basis.sig', 'new.bin', 'out.delta'], dir);
    await expectRefusal(r, dir, {
      names: 'zip',
      code: 'ERR_INVALID_ARGUMENT',
      inputs: ['basis.sig', 'new.bin'],
    });
  });
});

describe('mimic usage', () => {
  it('prints help for mimic --help', async () => {
    const dir = await makeTempDir();
    const r = await mimic(['--help'], dir);
    expect(r.code).toBe(0);
    for (const command of ['signature', 'delta', 'patch']) expect(r.stdout).toContain(command);
  });

  it('prints help for mimic patch --help', async () => {
    const dir = await makeTempDir();
    const r = await mimic(['patch', '--help'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('<basis>');
    expect(r.stdout).toContain('<delta-file>');
  });

  it('exits non-zero for an unknown command', async () => {
    const dir = await makeTempDir();
    const r = await mimic(['frobnicate', 'a', 'b'], dir);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain('frobnicate');
    expect(await listDir(dir)).toEqual([]);
  });

  it('exits non-zero when arguments are missing', async () => {
    const dir = await makeTempDir();
    const r = await mimic(['patch', 'basis.bin'], dir);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).not.toBe('');
  });
});
