import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { type WriteSource, writeParts } from './write-parts.js';

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
