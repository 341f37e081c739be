import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LSTAT, lstatDir } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'fsmeta-lstatdir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lstatDir', () => {
  it("gives every entry's lstat as Node's BigInt lstat has it, sorted, without fifos", () => {
    writeFileSync(join(dir, 'b.txt'), 'hello');
    writeFileSync(join(dir, 'a é.bin'), Buffer.alloc(70_000, 1));
    utimesSync(join(dir, 'a é.bin'), 1_000_000, 1_234_567_890.123456);
    mkdirSync(join(dir, 'sub'));
    symlinkSync('b.txt', join(dir, 'link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const { names, stats } = lstatDir(dir);
    expect(names).toEqual(['a é.bin', 'b.txt', 'link', 'sub']);
    expect(stats.length).toBe(names.length * LSTAT.fields);
    names.forEach((name, i) => {
      const st = lstatSync(join(dir, name), { bigint: true });
      const f = (k: keyof typeof LSTAT) => stats[i * LSTAT.fields + LSTAT[k]];
      expect(f('kind')).toBe(st.isFile() ? 0 : st.isDirectory() ? 1 : 2);
      expect(f('size')).toBe(st.isFile() ? Number(st.size) : 0);
      expect(f('mtimeMs')).toBe(Number(st.mtimeNs / 1_000_000n));
      expect(f('mtimeNs')).toBe(Number(st.mtimeNs % 1_000_000n));
      expect(f('mode')).toBe(Number(st.mode) & 0o7777);
      expect([f('uid'), f('gid'), f('nlink')]).toEqual([Number(st.uid), Number(st.gid), Number(st.nlink)]);
      expect([f('ino'), f('dev')]).toEqual([Number(st.ino), Number(st.dev)]);
      const ctimeMs = Number(st.ctimeNs / 1_000_000_000n) * 1e3 + Number(st.ctimeNs % 1_000_000_000n) / 1e6;
      expect(f('ctimeMs')).toBe(ctimeMs);
    });
  });

  it('an empty folder lists nothing; a missing one throws ENOENT, a file ENOTDIR', () => {
    mkdirSync(join(dir, 'empty'));
    expect(lstatDir(join(dir, 'empty'))).toEqual({ names: [], stats: new Float64Array(0) });
    expect(() => lstatDir(join(dir, 'nope'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => lstatDir(join(dir, 'b.txt'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });
});
