import {
  fstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
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
  for (const op of ops) a.add(cur, op.data);
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
