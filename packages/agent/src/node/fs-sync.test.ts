import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileSystemSync, FsSyncError } from './fs-sync.js';

describe('FileSystemSync', () => {
  const dirs: string[] = [];
  const syncs: FileSystemSync[] = [];
  const fresh = (path: string) => {
    const s = new FileSystemSync(path);
    syncs.push(s);
    return s;
  };
  afterEach(() => {
    for (const s of syncs.splice(0)) s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('syncs a folder’s file system, many times through one shell, calls in flight at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimic-fssync-'));
    dirs.push(dir);
    const s = fresh(dir);
    expect(await s.usable()).toBe(true);
    writeFileSync(join(dir, 'a'), 'x');
    await Promise.all([s.sync(), s.sync(), s.sync()]);
    await s.sync();
  });

  it('is unusable, not failing later, where sync -f cannot run for the path', async () => {
    const s = fresh(join(tmpdir(), 'mimic-fssync-no-such-folder', 'x'));
    expect(await s.usable()).toBe(false);
    await expect(s.sync()).rejects.toBeInstanceOf(FsSyncError);
  });

  it('refuses calls once closed, with a stable code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimic-fssync-'));
    dirs.push(dir);
    const s = fresh(dir);
    expect(await s.usable()).toBe(true);
    s.close();
    const err = await s.sync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FsSyncError);
    expect((err as FsSyncError).code).toBe('ERR_FSYNC');
  });
});
