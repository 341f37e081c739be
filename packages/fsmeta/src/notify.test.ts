import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { notify } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'fsmeta-notify-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Binds a datagram socket at `address` ('@name': abstract) in python3; yields each datagram received. */
async function receiver(address: string): Promise<{ next(): Promise<string> }> {
  const script = [
    'import json, socket, sys',
    'a = sys.argv[1]',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    "s.bind('\\0' + a[1:] if a.startswith('@') else a)",
    "print('bound', flush=True)",
    'while True: print(json.dumps(s.recv(4096).decode()), flush=True)',
  ].join('\n');
  const child = spawn('python3', ['-c', script, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  expect(first.value).toBe('bound');
  return {
    next: async () => JSON.parse((await lines.next()).value as string) as string,
  };
}

describe('notify', () => {
  it('sends one datagram to a socket path', async () => {
    const path = join(dir, 'notify.sock');
    const r = await receiver(path);
    notify(path, 'READY=1\nSTATUS=serving');
    expect(await r.next()).toBe('READY=1\nSTATUS=serving');
    notify(path, 'WATCHDOG=1');
    expect(await r.next()).toBe('WATCHDOG=1');
  });

  it('sends to the abstract namespace when the path starts with @', async () => {
    const name = `@fsmeta-test-${process.pid}-${Date.now()}`;
    const r = await receiver(name);
    notify(name, 'STOPPING=1');
    expect(await r.next()).toBe('STOPPING=1');
  });

  it('throws errors with the errno name as code', () => {
    const code = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        return (err as NodeJS.ErrnoException).code;
      }
      return 'no error';
    };
    expect(code(() => notify(join(dir, 'missing.sock'), 'READY=1'))).toBe('ENOENT');
    const plain = join(dir, 'plain-file');
    writeFileSync(plain, '');
    expect(code(() => notify(plain, 'READY=1'))).toBe('ECONNREFUSED');
    expect(code(() => notify(`@fsmeta-nobody-${process.pid}-${Date.now()}`, 'READY=1'))).toBe('ECONNREFUSED');
    expect(() => notify('relative.sock', 'READY=1')).toThrow(TypeError);
    expect(() => notify(join(dir, 'x'.repeat(200)), 'READY=1')).toThrow(RangeError);
    expect(() => notify(join(dir, 'notify.sock'), 'x'.repeat(5000))).toThrow(RangeError);
  });
});
