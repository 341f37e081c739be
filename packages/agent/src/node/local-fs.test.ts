import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { readFileVersion } from './local-fs.js';

const dir = mkdtempSync(join(tmpdir(), 'mimic-local-fs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('readFileVersion reads a regular file, and never through a link or into a fifo', async () => {
  writeFileSync(join(dir, 'file'), 'some bytes');
  symlinkSync('file', join(dir, 'link'));
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  const v = await readFileVersion(join(dir, 'file'), 1024);
  expect(v?.entry.size).toBe(10);
  expect(Buffer.from(v!.content!).toString()).toBe('some bytes');
  // A link is not its target; a fifo has no writer and would block an open that waits.
  expect(await readFileVersion(join(dir, 'link'), 1024)).toBeNull();
  expect(await readFileVersion(join(dir, 'pipe'), 1024)).toBeNull();
  expect(await readFileVersion(join(dir, 'missing'), 1024)).toBeNull();
});
