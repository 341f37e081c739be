import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { runMimic, test } from './helpers/cluster.js';

/*
 * The agent commands fail fast, with a non-zero exit and exactly one line on stderr that names
 * what was wrong (the folder, the address) and ends with a stable code in brackets.
 */

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, `stderr: ${stderr}`).toHaveLength(1);
  return lines[0]!;
}

async function listenOnFreePort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  return { server, port: addr.port };
}

describe('agent command failures', () => {
  test('status with no agent running names the state folder', async ({ cluster, expect }) => {
    const state = join(await cluster.tempDir('state'), 'nothing-here');
    for (const extra of [[], ['--json']]) {
      const r = await runMimic(['status', '--state', state, ...extra]);
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      const line = oneLine(r.stderr);
      expect(line).toContain(state);
      expect(line).toMatch(/\[ERR_NO_AGENT\]$/);
    }
  });

  test('primary on a missing folder', async ({ cluster, expect }) => {
    const missing = join(await cluster.tempDir('parent'), 'missing');
    const r = await runMimic(['primary', missing, '--listen', '127.0.0.1:0']);
    expect(r.code).not.toBe(0);
    const line = oneLine(r.stderr);
    expect(line).toContain(missing);
    expect(line).toMatch(/\[ERR_NO_ROOT\]$/);
    expect(existsSync(missing)).toBe(false);
  });

  test('primary with a bad --rescan or --journal-keep names the flag', async ({ cluster, expect }) => {
    const dir = await cluster.tempDir('root');
    for (const [flag, value] of [
      ['--rescan', '-1'],
      ['--journal-keep', '0'],
      ['--journal-keep', 'lots'],
    ] as const) {
      const r = await runMimic(['primary', dir, '--listen', '127.0.0.1:0', flag, value]);
      expect(r.code).not.toBe(0);
      const line = oneLine(r.stderr);
      expect(line).toContain(`${flag} ${value}`);
      expect(line).toMatch(/\[ERR_INVALID_ARGUMENT\]$/);
    }
  });

  test('mirror on a missing folder', async ({ cluster, expect }) => {
    const missing = join(await cluster.tempDir('parent'), 'missing');
    const r = await runMimic(['mirror', missing, '--primary', 'ws://127.0.0.1:9']);
    expect(r.code).not.toBe(0);
    const line = oneLine(r.stderr);
    expect(line).toContain(missing);
    expect(line).toMatch(/\[ERR_NO_ROOT\]$/);
  });

  test('primary on an address in use names the address', async ({ cluster, expect }) => {
    const dir = await cluster.tempDir('primary');
    const { server, port } = await listenOnFreePort();
    try {
      const r = await runMimic(['primary', dir, '--listen', `127.0.0.1:${port}`, '--init']);
      expect(r.code).not.toBe(0);
      const line = oneLine(r.stderr);
      expect(line).toContain(`127.0.0.1:${port}`);
      expect(line).toMatch(/\[ERR_PORT_IN_USE\]$/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
