import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentHash } from '@mimic/delta';
import type { WriteOp } from '@mimic/wire';
import { afterEach, describe, expect, test } from 'vitest';
import { type Manifest, Store } from '../../node/store.js';
import { Applier } from './applier.js';
import { type Assembled, Assembler } from './assembly.js';
import { GroupCommit, SYNCFS_MIN_FILES } from './group-commit.js';

/*
 * White-box tests of the group commit: assembled files in a real temp folder, landed into a real
 * root, recorded in a real store. The landing site here only joins paths (the applier's checks
 * and clearing are tested through the Applier).
 */

const MTIME = 1_700_000_000_000;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

interface Fixture {
  root: string;
  tmp: string;
  state: string;
  store: Store;
  manifest: Manifest;
  /** How many times the site's afterLanding ran. */
  landings(): number;
  group: GroupCommit;
  /** A verified temp file for `path` holding `text`, ready to add to the group. */
  file(path: string, text: string): Promise<Assembled>;
  /** The paths the store holds on disk. */
  stored(): string[];
}

function writeOp(path: string, text: string, extra: Partial<WriteOp> = {}): WriteOp {
  const data = new TextEncoder().encode(text);
  return {
    kind: 'write',
    path,
    mode: 0o644,
    mtimeMs: MTIME,
    size: data.length,
    hash: contentHash(data),
    encoding: 'full',
    part: 0,
    last: true,
    data,
    ...extra,
  };
}

function fixture(): Fixture {
  const base = mkdtempSync(join(tmpdir(), 'mimic-group-'));
  const root = join(base, 'root');
  const state = join(base, 'state');
  const tmp = join(state, 'tmp');
  for (const d of [root, state]) mkdirSync(d);
  const store = new Store(join(state, 'mimic.db'));
  const manifest = store.loadFiles();
  const assembler = new Assembler(tmp);
  assembler.init();
  let afterLanding = 0;
  const group = new GroupCommit(root, store, manifest, {
    placeFor: async (rel, parents) => {
      const dir = join(root, rel, '..');
      if (!parents.has(dir)) mkdirSync(dir, { recursive: true });
      parents.add(dir);
      return join(root, rel);
    },
    afterLanding: async () => {
      afterLanding++;
    },
  });
  cleanups.push(() => {
    group.close();
    store.close();
    rmSync(base, { recursive: true, force: true });
  });
  return {
    root,
    tmp,
    state,
    store,
    manifest,
    group,
    landings: () => afterLanding,
    file: async (path, text) => (await assembler.whole(writeOp(path, text)))!,
    stored: () => {
      const again = new Store(join(state, 'mimic.db'));
      try {
        return [...again.loadFiles().keys()].sort();
      } finally {
        again.close();
      }
    },
  };
}

/** `commitSoon`, resolved with what its `done` callback got. */
async function landSoon(group: GroupCommit, record?: () => void): Promise<Error | undefined> {
  let report!: (err?: Error) => void;
  const reported = new Promise<Error | undefined>((r) => (report = r));
  await group.commitSoon(record, report);
  return reported;
}

describe('group commit', () => {
  test('a batch lands only at commit, then is recorded with its identity on disk', async () => {
    const f = fixture();
    await f.group.add(await f.file('a.txt', 'a\n'));
    await f.group.add(await f.file('d/b.txt', 'b\n'));
    expect(f.group.size).toBe(2);
    expect(existsSync(join(f.root, 'a.txt'))).toBe(false);
    expect(existsSync(join(f.root, 'd'))).toBe(false);
    expect(readdirSync(f.tmp)).toHaveLength(2);
    expect(f.manifest.size).toBe(0);
    expect(f.landings()).toBe(0);
    await f.group.commit();
    expect(f.landings()).toBe(1);
    expect(f.group.size).toBe(0);
    expect(readFileSync(join(f.root, 'a.txt'), 'utf8')).toBe('a\n');
    expect(readFileSync(join(f.root, 'd/b.txt'), 'utf8')).toBe('b\n');
    expect(readdirSync(f.tmp)).toEqual([]);
    expect(f.manifest.get('a.txt')?.ino).toBeGreaterThan(0);
    expect(f.manifest.get('a.txt')?.hash).toBe(contentHash(new TextEncoder().encode('a\n')));
    expect(f.stored()).toEqual(['a.txt', 'd/b.txt']);
  });

  test('a newer version of a pending path replaces the older one before it lands', async () => {
    const f = fixture();
    await f.group.add(await f.file('a.txt', 'old\n'));
    await f.group.add(await f.file('a.txt', 'new\n'));
    expect(f.group.size).toBe(1);
    expect(readdirSync(f.tmp)).toHaveLength(1);
    await f.group.commit();
    expect(readFileSync(join(f.root, 'a.txt'), 'utf8')).toBe('new\n');
  });

  test('the record callback runs only once the batch has landed, in its transaction', async () => {
    const f = fixture();
    await f.group.add(await f.file('a.txt', 'a\n'));
    const seen: { inPlace: boolean; recorded: boolean }[] = [];
    const err = await landSoon(f.group, () => {
      seen.push({ inPlace: existsSync(join(f.root, 'a.txt')), recorded: f.manifest.has('a.txt') });
    });
    expect(err).toBeUndefined();
    expect(seen).toEqual([{ inPlace: true, recorded: true }]);
    expect(f.group.landing).toBe(false);
    await f.group.landed();
  });

  test('with nothing pending, commit still runs the record callback', async () => {
    const f = fixture();
    let calls = 0;
    await f.group.commit(() => calls++);
    expect(calls).toBe(1);
  });

  test('a landing failure reports through done, names the path and step, and records nothing', async () => {
    const f = fixture();
    // A folder with something in it where the file belongs: the rename into place fails.
    mkdirSync(join(f.root, 'b.txt'));
    writeFileSync(join(f.root, 'b.txt', 'in the way'), 'x');
    await f.group.add(await f.file('a.txt', 'a\n'));
    await f.group.add(await f.file('b.txt', 'b\n'));
    await f.group.add(await f.file('c.txt', 'c\n'));
    let recorded = 0;
    const err = await landSoon(f.group, () => recorded++);
    expect(err).toMatchObject({ name: 'LandingError', code: 'ERR_LAND' });
    const cause = err?.cause as { code?: string; message: string };
    expect(cause.code).toBe('ERR_LAND');
    expect(cause.message.startsWith('b.txt: renaming into place: ')).toBe(true);
    expect(recorded).toBe(0);
    expect(f.landings()).toBe(0);
    expect(f.manifest.size).toBe(0);
    expect(f.stored()).toEqual([]);
    expect(readdirSync(f.tmp)).toEqual([]);
    expect(existsSync(join(f.root, 'c.txt'))).toBe(false);
    // The next step meets the failure once, then starts clean.
    await expect(f.group.landed()).rejects.toBe(err);
    await f.group.landed();
    await f.group.commit();
  });

  test('abandon drops a failed landing (already reported) and its temp files', async () => {
    const f = fixture();
    mkdirSync(join(f.root, 'a.txt', 'sub'), { recursive: true });
    await f.group.add(await f.file('a.txt', 'a\n'));
    const err = await landSoon(f.group);
    expect(err).toMatchObject({ code: 'ERR_LAND' });
    await f.group.abandon();
    expect(f.group.failed).toBe(false);
    expect(readdirSync(f.tmp)).toEqual([]);
    await f.group.add(await f.file('b.txt', 'b\n'));
    await f.group.commit();
    expect(f.stored()).toEqual(['b.txt']);
  });

  test(`a group of ${SYNCFS_MIN_FILES} files or more lands the same way`, async () => {
    const f = fixture();
    const names = Array.from({ length: SYNCFS_MIN_FILES + 1 }, (_, i) => `d${i % 3}/f${i}`);
    for (const n of names) await f.group.add(await f.file(n, n));
    await f.group.commit();
    for (const n of names) expect(readFileSync(join(f.root, n), 'utf8')).toBe(n);
    expect(f.stored()).toEqual([...names].sort());
  });
});

describe('Applier.abandon', () => {
  test('discards the half-received file; the files already complete still land', async () => {
    const base = mkdtempSync(join(tmpdir(), 'mimic-abandon-'));
    const root = join(base, 'root');
    const tmp = join(base, 'state', 'tmp');
    mkdirSync(root);
    const store = new Store(join(base, 'mimic.db'));
    const applier = new Applier(
      root,
      store,
      tmp,
      () => join(base, 'diverged'),
      () => {},
    );
    cleanups.push(() => {
      applier.close();
      store.close();
      rmSync(base, { recursive: true, force: true });
    });
    await applier.init();
    await applier.apply(writeOp('done.txt', 'complete\n'));
    const half = writeOp('half.txt', 'first half, second half\n');
    await applier.apply({ ...half, last: false, data: half.data.subarray(0, 11) });
    expect(applier.busy).toBe(true);
    expect(readdirSync(tmp)).toHaveLength(2);
    await applier.abandon();
    expect(applier.busy).toBe(false);
    expect(readdirSync(tmp)).toHaveLength(1);
    await applier.commit();
    expect(readdirSync(root)).toEqual(['done.txt']);
    expect(readdirSync(tmp)).toEqual([]);
  });
});
