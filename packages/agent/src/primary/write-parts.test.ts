import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentHash, decodeSignature, hashToHex } from '@mimic/delta';
import type { WriteOp } from '@mimic/wire';
import { afterAll, expect, test } from 'vitest';
import { PART_BYTES, type WriteSource, writeParts } from './write-parts.js';

const dir = mkdtempSync(join(tmpdir(), 'mimic-write-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const source = (name: string): WriteSource => ({
  abs: join(dir, name),
  path: name,
  mode: 0o644,
  mtimeMs: 0,
  size: 4,
  hash: '0000000000000000',
});

async function codeOf(src: WriteSource): Promise<string | undefined> {
  try {
    for await (const _ of writeParts(src)) {
    }
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
}

test('a file sent is read as a file: a link or a fifo in its place counts as gone, and nothing blocks', async () => {
  writeFileSync(join(dir, 'target'), 'data');
  symlinkSync('target', join(dir, 'link'));
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  expect(await codeOf(source('link'))).toBe('ENOENT');
  expect(await codeOf(source('pipe'))).toBe('ENOENT');
  expect(await codeOf(source('missing'))).toBe('ENOENT');
  const parts = [];
  for await (const part of writeParts(source('target'))) parts.push(part);
  expect(parts).toHaveLength(1);
  expect(Buffer.from(parts[0]!.data).toString()).toBe('data');
});

const MiB = 1024 * 1024;

/** A file of `size` bytes, all hole but for `data` written at their offsets. */
function sparseFile(name: string, size: number, data: [offset: number, bytes: Uint8Array][]): string {
  const abs = join(dir, name);
  const fd = openSync(abs, 'w');
  try {
    ftruncateSync(fd, size);
    for (const [offset, bytes] of data) writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
  return abs;
}

async function partsOf(src: WriteSource): Promise<WriteOp[]> {
  const parts: WriteOp[] = [];
  for await (const part of writeParts(src)) parts.push(part);
  return parts;
}

test('a sparse file is sent by its data regions: parts at their offsets, none across a hole, hashed as a plain read', async () => {
  const size = 10 * MiB + 100;
  const middle = randomBytes(4096);
  const long = randomBytes(MiB + MiB / 2);
  const tail = randomBytes(100);
  const abs = sparseFile('sparse', size, [
    [2 * MiB, middle],
    [5 * MiB, long],
    [10 * MiB, tail],
  ]);
  let kept: { hash: string; signature: Uint8Array } | undefined;
  const sign = {
    later: () => {},
    keep: (hash: string, signature: Uint8Array) => (kept = { hash, signature }),
  };
  const parts = await partsOf({ ...source('sparse'), size, sign });
  expect(parts.map((p) => [p.part, p.offset, p.data.length, p.last])).toEqual([
    [0, 2 * MiB, 4096, false],
    [1, 5 * MiB, PART_BYTES, false],
    [2, 6 * MiB, MiB / 2, false],
    [3, 10 * MiB, 100, true],
  ]);
  expect(parts.every((p) => p.encoding === 'full' && p.size === size && !p.abort)).toBe(true);
  const content = readFileSync(abs);
  expect(parts[3]!.hash).toBe(contentHash(content));
  // The parts at their offsets, zeros between them, are the file.
  const rebuilt = new Uint8Array(size);
  for (const p of parts) rebuilt.set(p.data, p.offset!);
  expect(Buffer.from(rebuilt).equals(content)).toBe(true);
  // Its signature, for the delta of its next change, is the whole file's.
  expect(kept?.hash).toBe(contentHash(content));
  expect(hashToHex(decodeSignature(kept!.signature).fileHash)).toBe(contentHash(content));
});

test('a file all hole is one empty last part at its end', async () => {
  const size = 3 * MiB;
  sparseFile('holes-only', size, []);
  const parts = await partsOf({ ...source('holes-only'), size });
  expect(parts).toHaveLength(1);
  expect(parts[0]).toMatchObject({ part: 0, last: true, offset: size, size, encoding: 'full' });
  expect(parts[0]!.data.length).toBe(0);
  expect(parts[0]!.hash).toBe(contentHash(new Uint8Array(size)));
});

test('a dense file goes as it always did: contiguous parts without offsets', async () => {
  const content = randomBytes(2 * MiB + 10);
  writeFileSync(join(dir, 'dense'), content);
  const parts = await partsOf({ ...source('dense'), size: content.length });
  expect(parts.map((p) => [p.offset, p.data.length, p.last])).toEqual([
    [undefined, PART_BYTES, false],
    [undefined, PART_BYTES, false],
    [undefined, 10, true],
  ]);
  expect(parts[2]!.hash).toBe(contentHash(content));
});

test.skipIf(!existsSync('/proc/kallsyms'))(
  'a file holding more than its size at open is read a chunk past it, not a byte at a time',
  async () => {
    // /proc/kallsyms says 0 bytes and holds megabytes: as a file rewritten in place looks when it
    // is opened just after its writer truncated it. Read a byte per call, it took seconds.
    const started = performance.now();
    const parts = await partsOf({ ...source('kallsyms'), abs: '/proc/kallsyms', size: 0 });
    expect(parts.at(-1)!.abort).toBe(true);
    expect(parts.reduce((n, p) => n + p.data.length, 0)).toBeLessThanOrEqual(128 * 1024);
    expect(performance.now() - started).toBeLessThan(1000);
  },
);
