import { lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfinementError, isBlockedParent, mkdirsNoFollow, safePath } from './confine.js';

let base: string;
let root: string;
let outside: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'mimic-confine-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  await mkdir(root);
  await mkdir(outside);
  await writeFile(join(outside, 'victim.txt'), 'outside content');
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConfinementError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('ConfinementError.reason', () => {
  it('tells a parent that is a link or a file now from a malformed path', async () => {
    await symlink(outside, join(root, 'd'));
    await writeFile(join(root, 'f'), 'a file');
    const reasons: string[] = [];
    for (const rel of ['d/victim.txt', 'f/x', '../x', '/etc/passwd', '.mimic/x', 'a//b']) {
      const err = await safePath(root, rel).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfinementError);
      reasons.push(`${rel}:${(err as ConfinementError).reason}:${isBlockedParent(err)}`);
    }
    expect(reasons).toEqual([
      'd/victim.txt:parent:true',
      'f/x:parent:true',
      '../x:path:false',
      '/etc/passwd:path:false',
      '.mimic/x:path:false',
      'a//b:path:false',
    ]);
  });
});

describe('safePath', () => {
  it('accepts a regular nested path and returns it under the root', async () => {
    await mkdir(join(root, 'a', 'b'), { recursive: true });
    expect(await safePath(root, 'a/b/c.txt')).toBe(join(root, 'a', 'b', 'c.txt'));
  });

  it('accepts missing parents', async () => {
    expect(await safePath(root, 'x/y/z.txt')).toBe(join(root, 'x', 'y', 'z.txt'));
    await mkdir(join(root, 'x'));
    expect(await safePath(root, 'x/y/z.txt')).toBe(join(root, 'x', 'y', 'z.txt'));
  });

  it('accepts a top-level name and a final component that is a symlink', async () => {
    await symlink(outside, join(root, 'link'));
    expect(await safePath(root, 'link')).toBe(join(root, 'link'));
    expect(await safePath(root, 'plain.txt')).toBe(join(root, 'plain.txt'));
  });

  it('refuses a parent that is a symlink to a folder outside the root', async () => {
    await symlink(outside, join(root, 'evil'));
    expect(await codeOf(safePath(root, 'evil/pwned.txt'))).toBe('ERR_UNSAFE_PATH');
    expect(await codeOf(safePath(root, 'evil/victim.txt'))).toBe('ERR_UNSAFE_PATH');
  });

  it('refuses a parent that is a symlink even when it points inside the root', async () => {
    await mkdir(join(root, 'real'));
    await symlink(join(root, 'real'), join(root, 'alias'));
    await symlink('real', join(root, 'relative-alias'));
    expect(await codeOf(safePath(root, 'alias/f.txt'))).toBe('ERR_UNSAFE_PATH');
    expect(await codeOf(safePath(root, 'relative-alias/f.txt'))).toBe('ERR_UNSAFE_PATH');
  });

  it('refuses a symlink deeper down the path', async () => {
    await mkdir(join(root, 'a', 'b'), { recursive: true });
    await symlink(outside, join(root, 'a', 'b', 'c'));
    expect(await codeOf(safePath(root, 'a/b/c/d/e.txt'))).toBe('ERR_UNSAFE_PATH');
  });

  it('refuses a file used as a parent', async () => {
    await writeFile(join(root, 'file'), 'x');
    expect(await codeOf(safePath(root, 'file/child.txt'))).toBe('ERR_UNSAFE_PATH');
  });

  it('refuses paths that are not wire paths, with the same code', async () => {
    for (const bad of ['/etc/passwd', '../outside/victim.txt', 'a/../../b', '.mimic/x', 'a\0b', '', 'a//b']) {
      expect(await codeOf(safePath(root, bad))).toBe('ERR_UNSAFE_PATH');
    }
  });

  it('names the refused path on the error', async () => {
    await symlink(outside, join(root, 'evil'));
    const err = await safePath(root, 'evil/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfinementError);
    expect((err as ConfinementError).path).toBe('evil/x');
  });
});

describe('mkdirsNoFollow', () => {
  it('creates missing folders one by one, with the given mode', async () => {
    const abs = await mkdirsNoFollow(root, 'a/b/c', 0o750);
    expect(abs).toBe(join(root, 'a', 'b', 'c'));
    for (const p of ['a', 'a/b', 'a/b/c']) {
      const st = await lstat(join(root, p));
      expect(st.isDirectory()).toBe(true);
      // The umask may take bits away, never add any.
      expect(st.mode & 0o777 & ~0o750).toBe(0);
      expect(st.mode & 0o700).toBe(0o700);
    }
  });

  it('is a no-op on folders that already exist', async () => {
    await mkdir(join(root, 'a', 'b'), { recursive: true });
    await expect(mkdirsNoFollow(root, 'a/b')).resolves.toBe(join(root, 'a', 'b'));
  });

  it('refuses to pass through a symlink to an outside folder and creates nothing outside', async () => {
    const before = await readdir(outside);
    const beforeStat = await stat(outside);
    await symlink(outside, join(root, 'evil'));
    expect(await codeOf(mkdirsNoFollow(root, 'evil/new/deeper'))).toBe('ERR_UNSAFE_PATH');
    expect(await readdir(outside)).toEqual(before);
    expect((await stat(outside)).mtimeMs).toBe(beforeStat.mtimeMs);
    // The link is left alone: removing it is the caller's decision.
    expect((await lstat(join(root, 'evil'))).isSymbolicLink()).toBe(true);
  });

  it('refuses a final component that is a symlink, even to a folder', async () => {
    await symlink(outside, join(root, 'evil'));
    expect(await codeOf(mkdirsNoFollow(root, 'evil'))).toBe('ERR_UNSAFE_PATH');
    expect(await readdir(outside)).toEqual(['victim.txt']);
  });

  it('refuses a file in the way', async () => {
    await mkdir(join(root, 'a'));
    await writeFile(join(root, 'a', 'b'), 'x');
    expect(await codeOf(mkdirsNoFollow(root, 'a/b/c'))).toBe('ERR_UNSAFE_PATH');
  });

  it('refuses paths that are not wire paths', async () => {
    for (const bad of ['/tmp/x', '../x', '.mimic/tmp']) {
      expect(await codeOf(mkdirsNoFollow(root, bad))).toBe('ERR_UNSAFE_PATH');
    }
    expect(await readdir(base)).toEqual(['outside', 'root']);
  });
});
