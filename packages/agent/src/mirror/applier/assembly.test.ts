import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentHash, delta, signature } from '@mimic/delta';
import type { WriteOp } from '@mimic/wire';
import { afterEach, describe, expect, test } from 'vitest';
import { Store } from '../../node/store.js';
import { Applier } from './applier.js';
import { type Assembled, Assembler, discard } from './assembly.js';

/*
 * White-box tests of a write's assembly: temp files in a real temp folder, verified content,
 * and nothing left behind by a refusal or an abort.
 */

const MTIME = 1_700_000_000_123;
const enc = (s: string) => new TextEncoder().encode(s);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup(): { dir: string; tmp: string; assembler: Assembler } {
  const dir = mkdtempSync(join(tmpdir(), 'mimic-assembly-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const tmp = join(dir, 'tmp');
  const assembler = new Assembler(tmp);
  assembler.init();
  return { dir, tmp, assembler };
}

/** The parts of a write of `content` (already split), announcing `announced` as the result. */
function parts(
  path: string,
  chunks: Uint8Array[],
  announced: Uint8Array,
  extra: Partial<WriteOp> = {},
): WriteOp[] {
  return chunks.map((data, part) => ({
    kind: 'write',
    path,
    mode: 0o640,
    mtimeMs: MTIME,
    size: announced.length,
    hash: contentHash(announced),
    encoding: 'full',
    part,
    last: part === chunks.length - 1,
    data,
    ...extra,
  }));
}

/** Splits `bytes` into `n` parts of about equal size (the last may be empty). */
function split(bytes: Uint8Array, n: number): Uint8Array[] {
  const size = Math.ceil(bytes.length / n);
  return Array.from({ length: n }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
}

async function assemble(
  a: Assembler,
  ops: WriteOp[],
  basis: string | null = null,
): Promise<Assembled | null> {
  const cur = await a.begin(ops[0]!, basis);
  for (const op of ops) await a.add(cur, op.data, op.offset);
  return a.finish(cur, ops[ops.length - 1]!);
}

function landed(file: Assembled | null): string {
  if (!file) throw new Error('nothing assembled');
  cleanups.push(() => discard(file));
  return readFileSync(file.tmp, 'utf8');
}

describe('assembly of a write', () => {
  test('a file sent whole is verified, given its mode and mtime, and kept open', async () => {
    const { tmp, assembler } = setup();
    const content = enc('whole\n');
    const file = await assembler.whole(parts('a.txt', [content], content)[0]!);
    expect(landed(file)).toBe('whole\n');
    expect(file!.tmp.startsWith(`${tmp}/`)).toBe(true);
    expect(file!.rec).toMatchObject({ path: 'a.txt', kind: 'file', size: 6, mode: 0o640, mtimeMs: MTIME });
    expect(file!.rec.hash).toBe(contentHash(content));
    const st = fstatSync(file!.fd);
    expect(st.mode & 0o7777).toBe(0o640);
    expect(Math.round(st.mtimeMs)).toBe(MTIME);
  });

  test('a file assembled from several full parts, in order', async () => {
    const { assembler } = setup();
    const content = enc('one,two,three,four\n'.repeat(100));
    const chunks = split(content, 4);
    const a = await assembler.begin(parts('f', chunks, content)[0]!, null);
    expect(a.kind).toBe('full');
    for (const c of chunks) assembler.add(a, c);
    expect(a.nextPart).toBe(4);
    const file = await assembler.finish(a, parts('f', chunks, content)[3]!);
    expect(landed(file)).toBe(new TextDecoder().decode(content));
    expect(file!.rec.size).toBe(content.length);
  });

  test('a delta against its basis rebuilds the new content', async () => {
    const { dir, assembler } = setup();
    const basis = enc('the same old line\n'.repeat(500));
    const target = enc(
      `${'the same old line\n'.repeat(250)}a new line\n${'the same old line\n'.repeat(250)}`,
    );
    const basisPath = join(dir, 'basis');
    writeFileSync(basisPath, basis);
    const patch = delta(signature(basis), target);
    const ops = parts('f', split(patch, 3), target, { encoding: 'delta', baseHash: contentHash(basis) });
    const a = await assembler.begin(ops[0]!, basisPath);
    expect(a.kind).toBe('delta');
    for (const op of ops) assembler.add(a, op.data);
    const file = await assembler.finish(a, ops[2]!);
    expect(landed(file)).toBe(new TextDecoder().decode(target));
    expect(file!.rec.hash).toBe(contentHash(target));
  });

  test('a delta against another basis is refused by the patch (ERR_BASIS_MISMATCH), its temp file removed', async () => {
    const { dir, tmp, assembler } = setup();
    const basis = enc('basis the delta was made for\n'.repeat(100));
    const target = enc('target\n'.repeat(100));
    const other = join(dir, 'other');
    writeFileSync(other, 'not the basis\n');
    const ops = parts('f', [delta(signature(basis), target)], target, { encoding: 'delta' });
    await expect(assemble(assembler, ops, other)).rejects.toMatchObject({
      code: 'ERR_BASIS_MISMATCH',
    });
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('a delta without a basis is refused (ERR_APPLY)', async () => {
    const { tmp, assembler } = setup();
    const ops = parts('f', [enc('x')], enc('x'), { encoding: 'delta' });
    await expect(assembler.begin(ops[0]!, null)).rejects.toMatchObject({ code: 'ERR_APPLY' });
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('content whose hash or size is not the announced one is refused (ERR_APPLY)', async () => {
    const { tmp, assembler } = setup();
    const sent = enc('what was sent\n');
    const announced = enc('what was announced\n');
    await expect(assembler.whole(parts('w', [sent], announced)[0]!)).rejects.toMatchObject({
      code: 'ERR_APPLY',
    });
    await expect(assemble(assembler, parts('p', split(sent, 3), announced))).rejects.toMatchObject({
      code: 'ERR_APPLY',
    });
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('an aborted write assembles nothing and leaves nothing behind', async () => {
    const { tmp, assembler } = setup();
    const content = enc('changed while read\n');
    expect(await assembler.whole(parts('w', [content], content, { abort: true })[0]!)).toBeNull();
    const ops = parts('p', split(content, 2), content);
    ops[1]!.abort = true;
    expect(await assemble(assembler, ops)).toBeNull();
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('a half-received write, full or delta, is dropped with its temp file', async () => {
    const { dir, tmp, assembler } = setup();
    const content = enc('half of it\n');
    const full = await assembler.begin(parts('f', split(content, 2), content)[0]!, null);
    assembler.add(full, content.subarray(0, 4));
    const basisPath = join(dir, 'basis');
    writeFileSync(basisPath, content);
    const patch = delta(signature(content), content);
    const d = await assembler.begin(
      parts('d', split(patch, 2), content, { encoding: 'delta' })[0]!,
      basisPath,
    );
    assembler.add(d, patch.subarray(0, 1));
    expect(readdirSync(tmp)).toHaveLength(2);
    await assembler.drop(full);
    await assembler.drop(d);
    expect(readdirSync(tmp)).toEqual([]);
    expect(statSync(basisPath).size).toBe(content.length); // the basis is only read
  });

  test('init removes temp files a crash left behind', async () => {
    const { tmp, assembler } = setup();
    writeFileSync(join(tmp, 'left-behind.part'), 'x');
    assembler.init();
    expect(readdirSync(tmp)).toEqual([]);
  });
});

const MiB = 1024 * 1024;

/** `size` zero bytes with `data` at their offsets (what a sparse file reads as). */
function withHoles(size: number, data: [offset: number, bytes: Uint8Array][]): Uint8Array {
  const out = new Uint8Array(size);
  for (const [offset, bytes] of data) out.set(bytes, offset);
  return out;
}

/** Bytes the file's blocks take on disk. */
const allocated = (file: Assembled | null): number => fstatSync(file!.fd).blocks * 512;

function sameBytes(file: Assembled | null, want: Uint8Array): boolean {
  cleanups.push(() => discard(file!));
  return readFileSync(file!.tmp).equals(want);
}

describe('assembly of a sparse file: holes stay holes', () => {
  test('parts at offsets land there, the holes between and after unwritten and hashed as zeros', async () => {
    const { assembler } = setup();
    const a = randomBytes(4096);
    const b = randomBytes(MiB + 100);
    const c = randomBytes(100);
    const size = 64 * MiB;
    const content = withHoles(size, [
      [MiB, a],
      [8 * MiB, b],
      [32 * MiB, c],
    ]);
    const ops = parts('s', [a, b, c], content);
    ops[0]!.offset = MiB;
    ops[1]!.offset = 8 * MiB;
    ops[2]!.offset = 32 * MiB; // and a trailing hole of 32 MiB
    const file = await assemble(assembler, ops);
    expect(file!.rec).toMatchObject({ size, hash: contentHash(content) });
    expect(sameBytes(file, content)).toBe(true);
    expect(allocated(file)).toBeLessThanOrEqual(MiB + 64 * 1024);
  });

  test('a part without an offset follows the previous part; the last may carry none', async () => {
    const { assembler } = setup();
    const a = randomBytes(8192);
    const b = randomBytes(8192);
    const size = 4 * MiB;
    const content = withHoles(size, [
      [MiB, a],
      [MiB + a.length, b],
    ]);
    const ops = parts('s', [a, b], content);
    ops[0]!.offset = MiB;
    expect(sameBytes(await assemble(assembler, ops), content)).toBe(true);
  });

  test('a file sent in one part keeps the holes around its data, or is all hole', async () => {
    const { assembler } = setup();
    const data = randomBytes(4096);
    const content = withHoles(16 * MiB, [[8 * MiB, data]]);
    const one = parts('one', [data], content, { offset: 8 * MiB })[0]!;
    const file = await assembler.whole(one);
    expect(sameBytes(file, content)).toBe(true);
    expect(allocated(file)).toBeLessThanOrEqual(64 * 1024);
    const empty = parts('empty', [new Uint8Array(0)], new Uint8Array(16 * MiB), { offset: 16 * MiB })[0]!;
    const none = await assembler.whole(empty);
    expect(none!.rec).toMatchObject({ size: 16 * MiB, hash: contentHash(new Uint8Array(16 * MiB)) });
    expect(sameBytes(none, new Uint8Array(16 * MiB))).toBe(true);
    expect(allocated(none)).toBe(0);
  });

  test('zero blocks of a large file sent whole are left unwritten, as rsync -S does', async () => {
    const { assembler } = setup();
    const content = withHoles(3 * MiB, [
      [100, randomBytes(10)],
      [2 * MiB + 5, randomBytes(4096)],
    ]);
    const file = await assemble(assembler, parts('z', split(content, 3), content));
    expect(sameBytes(file, content)).toBe(true);
    expect(allocated(file)).toBeLessThanOrEqual(64 * 1024);
  });

  test('a delta against a sparse basis gives a sparse result', async () => {
    const { dir, assembler } = setup();
    const size = 32 * MiB;
    const old = randomBytes(4096);
    const basis = withHoles(size, [[16 * MiB, old]]);
    const target = withHoles(size, [
      [16 * MiB, old],
      [4 * MiB, randomBytes(4096)],
    ]);
    const basisPath = join(dir, 'basis');
    const fd = openSync(basisPath, 'w');
    ftruncateSync(fd, size);
    writeSync(fd, old, 0, old.length, 16 * MiB);
    closeSync(fd);
    const ops = parts('d', split(delta(signature(basis), target), 2), target, {
      encoding: 'delta',
      baseHash: contentHash(basis),
    });
    const file = await assemble(assembler, ops, basisPath);
    expect(file!.rec.hash).toBe(contentHash(target));
    expect(sameBytes(file, target)).toBe(true);
    expect(allocated(file)).toBeLessThanOrEqual(256 * 1024);
  });

  test('an offset that goes back, or data past the size, is refused (ERR_APPLY), nothing left behind', async () => {
    const { tmp, assembler } = setup();
    const a = randomBytes(4096);
    const content = withHoles(4 * MiB, [
      [2 * MiB, a],
      [MiB, a],
    ]);
    const back = parts('back', [a, a], content);
    back[0]!.offset = 2 * MiB;
    back[1]!.offset = 2 * MiB + 100;
    const cur = await assembler.begin(back[0]!, null);
    await assembler.add(cur, a, 2 * MiB);
    expect(() => assembler.add(cur, a, 2 * MiB + 100)).toThrow(
      expect.objectContaining({ code: 'ERR_APPLY' }),
    );
    await assembler.drop(cur);
    const past = parts('past', [a], new Uint8Array(4 * MiB));
    past[0]!.offset = 4 * MiB - 100;
    await expect(assemble(assembler, past)).rejects.toMatchObject({ code: 'ERR_APPLY' });
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('Applier: the basis of a delta', () => {
  test('a delta lands against the copy the mirror wrote; against a local edit it asks for a resync', async () => {
    const { dir } = setup();
    const root = join(dir, 'root');
    mkdirSync(root);
    const store = new Store(join(dir, 'mimic.db'));
    const applier = new Applier(
      root,
      store,
      join(dir, 'applier-tmp'),
      () => join(dir, 'diverged'),
      () => {},
    );
    cleanups.push(() => {
      applier.close();
      store.close();
    });
    await applier.init();
    const v1 = enc('version one\n'.repeat(200));
    const v2 = enc(`${'version one\n'.repeat(100)}version two\n${'version one\n'.repeat(100)}`);
    await applier.apply(parts('f', [v1], v1)[0]!);
    const ops = parts('f', split(delta(signature(v1), v2), 2), v2, {
      encoding: 'delta',
      baseHash: contentHash(v1),
    });
    for (const op of ops) await applier.apply(op); // its basis is still pending: it lands first
    await applier.commit();
    expect(readFileSync(join(root, 'f'), 'utf8')).toBe(new TextDecoder().decode(v2));
    writeFileSync(join(root, 'f'), 'a local edit\n');
    const again = parts('f', [delta(signature(v2), v1)], v1, {
      encoding: 'delta',
      baseHash: contentHash(v2),
    });
    await expect(applier.apply(again[0]!)).rejects.toMatchObject({ code: 'ERR_BASIS_MISMATCH' });
    expect(applier.busy).toBe(false);
    expect(readdirSync(join(dir, 'applier-tmp'))).toEqual([]);
  });
});
