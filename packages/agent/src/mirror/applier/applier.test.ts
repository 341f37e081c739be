import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashToHex, strongHash } from '@mimic/delta';
import type { Op, WriteOp } from '@mimic/wire';
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { Store } from '../../node/store.js';
import { Applier } from './applier.js';

/*
 * A mirror replays the ops after the last sequence it recorded, on a tree that may already hold
 * their result (it died after landing, before recording). Each op must then be idempotent, and
 * confinement stays as strict as ever for anything that writes.
 */

const MTIME = 1_700_000_000_000;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

interface Fixture {
  root: string;
  state: string;
  outside: string;
  applier: Applier;
  store: Store;
  /** Applies ops in order, landing the files at the end (as a checkpoint would). */
  run(ops: Op[]): Promise<void>;
  /** Closes the applier and store and removes the folders (also done after each test). */
  dispose(): void;
}

/** An applier as `Mirror.start` makes one. `outside` may be shared with another fixture. */
async function fixture(sharedOutside?: string): Promise<Fixture> {
  const base = mkdtempSync(join(tmpdir(), 'mimic-applier-'));
  const root = join(base, 'root');
  const state = join(base, 'state');
  const outside = sharedOutside ?? join(base, 'outside');
  for (const d of [root, state]) mkdirSync(d);
  if (!sharedOutside) {
    mkdirSync(outside);
    writeFileSync(join(outside, 'passwd'), 'outside the root\n');
  }
  const store = new Store(join(state, 'mimic.db'));
  const applier = new Applier(
    root,
    store,
    join(state, 'tmp'),
    () => join(state, 'diverged', '1'),
    () => {},
  );
  await applier.init();
  let open = true;
  const dispose = () => {
    if (!open) return;
    open = false;
    applier.close();
    store.close();
    rmSync(base, { recursive: true, force: true });
  };
  cleanups.push(dispose);
  return {
    root,
    state,
    outside,
    applier,
    store,
    dispose,
    run: async (ops) => {
      for (const op of ops) await applier.apply(op);
      await applier.commit();
    },
  };
}

function write(path: string, text: string): WriteOp {
  const data = new TextEncoder().encode(text);
  return {
    kind: 'write',
    path,
    mode: 0o644,
    mtimeMs: MTIME,
    size: data.length,
    hash: hashToHex(strongHash(data)),
    encoding: 'full',
    part: 0,
    last: true,
    data,
  };
}

const mkdir = (path: string): Op => ({ kind: 'mkdir', path, mode: 0o755, mtimeMs: MTIME });
const del = (path: string): Op => ({ kind: 'delete', path });
const link = (path: string, target: string): Op => ({ kind: 'symlink', path, target, mtimeMs: MTIME });
const meta = (path: string): Op => ({ kind: 'meta', path, mode: 0o700, mtimeMs: MTIME });
const rename = (from: string, to: string): Op => ({ kind: 'rename', from, to });

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'none',
    (err: { code?: string }) => err.code ?? 'no code',
  );
}

/** Every entry below `dir`: path, kind, and content or link target. */
function listing(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, r));
    if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(join(dir, r))}`);
    else if (st.isDirectory()) out.push(`${r}/`, ...listing(dir, r));
    else out.push(`${r} = ${readFileSync(join(dir, r), 'utf8')}`);
  }
  return out;
}

/** The manifest as the store holds it on disk (what the next start loads). */
function storedPaths(f: Fixture): string[] {
  const again = new Store(join(f.state, 'mimic.db'));
  try {
    return [...again.loadFiles().keys()].sort();
  } finally {
    again.close();
  }
}

describe('Applier: replays after a partly applied batch', () => {
  test('rm -rf d; ln -s outside d: every replay of the batch is already applied, not refused', async () => {
    const f = await fixture();
    await f.run([mkdir('d'), write('d/passwd', 'inside\n')]);
    const second: Op[] = [
      write('beside.txt', 'first\n'),
      del('d/passwd'),
      del('d'),
      link('d', f.outside),
      write('beside.txt', 'second\n'),
    ];
    await f.run(second);
    const after = listing(f.root);
    // From the start of the batch, from the first delete of d/passwd, and from each later op.
    for (let from = 0; from < second.length; from++) {
      await f.run(second.slice(from));
      expect(listing(f.root), `replay from ${from}`).toEqual(after);
    }
    expect(readlinkSync(join(f.root, 'd'))).toBe(f.outside);
    expect(listing(f.outside)).toEqual(['passwd = outside the root\n']);
    expect(f.applier.manifest.get('d')?.kind).toBe('symlink');
    expect(f.applier.manifest.has('d/passwd')).toBe(false);
    expect(storedPaths(f)).toEqual(['beside.txt', 'd']);
  });

  test('a delete below what is now a link drops the path and its subtree from the manifest', async () => {
    const f = await fixture();
    await f.run([mkdir('d'), mkdir('d/sub'), write('d/sub/x', 'x\n'), write('d/passwd', 'inside\n')]);
    // The tree moved on without the applier (as after a crash between disk and manifest).
    rmSync(join(f.root, 'd'), { recursive: true });
    symlinkSync(f.outside, join(f.root, 'd'));
    await f.run([del('d/passwd'), del('d/sub')]);
    expect([...f.applier.manifest.keys()].sort()).toEqual(['d']);
    expect(storedPaths(f)).toEqual(['d']);
    expect(listing(f.outside)).toEqual(['passwd = outside the root\n']);
  });

  test('a delete, meta or rename-away below a file, a link or a missing folder is a no-op', async () => {
    const f = await fixture();
    await f.run([write('f', 'a file\n'), link('l', f.outside)]);
    const before = listing(f.root);
    await f.run([
      del('f/x'),
      del('l/passwd'),
      del('gone/x'),
      meta('l/passwd'),
      meta('f/x'),
      meta('gone/x'),
      rename('l/passwd', 'stolen'),
      rename('f/x', 'y'),
      rename('gone/x', 'y'),
    ]);
    expect(listing(f.root)).toEqual(before);
    expect(listing(f.outside)).toEqual(['passwd = outside the root\n']);
    expect(lstatSync(join(f.outside, 'passwd')).mode & 0o777).not.toBe(0o700);
  });

  test('a write, mkdir, symlink or rename to a name through a link is still refused', async () => {
    const f = await fixture();
    await f.run([link('l', f.outside), write('x', 'x\n')]);
    const before = listing(f.root);
    const writes = [write('l/pwned', 'pwned'), mkdir('l/sub'), link('l/planted', '/'), rename('x', 'l/x')];
    for (const op of writes) expect(await codeOf(f.run([op])), JSON.stringify(op)).toBe('ERR_UNSAFE_PATH');
    expect(listing(f.root)).toEqual(before);
    expect(listing(f.outside)).toEqual(['passwd = outside the root\n']);
  });

  test('a malformed path is refused by every op, including those that would be no-ops', async () => {
    const f = await fixture();
    await f.run([write('x', 'x\n')]);
    const before = listing(f.root);
    for (const bad of ['../escape', '/etc/passwd', '.mimic/x', 'x/', 'a//b', 'a/../../b']) {
      const removals = [del(bad), meta(bad), rename(bad, 'y'), rename('missing', bad)];
      for (const op of [...removals, rename('x', bad), mkdir(bad), write(bad, 'w'), link(bad, 'z')]) {
        // `safePath` says ERR_UNSAFE_PATH; a path below a folder already checked meets
        // checkWirePath first, which says ERR_BAD_PATH. Either is a refusal.
        expect(['ERR_UNSAFE_PATH', 'ERR_BAD_PATH'], JSON.stringify(op)).toContain(await codeOf(f.run([op])));
      }
    }
    expect(listing(f.root)).toEqual(before);
  });
});

/**
 * Op sequences as a primary journals them: a folder exists before what goes in it, and a path
 * that changes kind is deleted first. Links point at the outside folder, so that anything
 * written through one would show there. Renames are left out (see the property below).
 */
function primaryOps(intents: [string, string][], outside: string): Op[] {
  const model = new Map<string, string>();
  const ops: Op[] = [];
  const drop = (p: string) => {
    for (const k of [...model.keys()]) if (k === p || k.startsWith(`${p}/`)) model.delete(k);
    ops.push(del(p));
  };
  for (const [p, action] of intents) {
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : null;
    if (parent !== null && model.get(parent) !== 'dir') continue;
    const now = model.get(p);
    if (action === 'delete' || action === 'meta') {
      if (now && action === 'delete') drop(p);
      else if (now && now !== 'link') ops.push(meta(p));
      continue;
    }
    const kind = action === 'mkdir' ? 'dir' : action === 'link' ? 'link' : 'file';
    if (now && now !== kind) drop(p);
    if (kind === 'dir' && now === 'dir') continue;
    model.set(p, kind);
    ops.push(kind === 'dir' ? mkdir(p) : kind === 'link' ? link(p, outside) : write(p, action));
  }
  return ops;
}

/** Whether a fresh applier on the same tree refuses `op` too, and with which code. */
async function freshCode(f: Fixture, op: Op): Promise<string> {
  const fresh = new Applier(
    f.root,
    f.store,
    join(f.state, 'tmp-fresh'),
    () => join(f.state, 'diverged', '2'),
    () => {},
  );
  await fresh.init();
  try {
    return await codeOf(fresh.apply(op).then(() => fresh.commit()));
  } finally {
    fresh.close();
  }
}

describe('Applier: replay property', () => {
  // Renames are left out: one replayed after its old name got new content moves that content
  // (rename a b; symlink a; replayed: the link moves to b). A mirror never replays those: a
  // stop with tree changes past its recorded sequence makes the next start compare manifests.
  test('a prefix, then a replay from any earlier op: only fresh refusals, and the tree made once', async () => {
    const paths = ['a', 'a/b', 'b', 'b/c'];
    const actions = ['mkdir', '1', '2', 'link', 'delete', 'meta'];
    const intents = fc.array(fc.tuple(fc.constantFrom(...paths), fc.constantFrom(...actions)), {
      minLength: 1,
      maxLength: 10,
    });
    await fc.assert(
      fc.asyncProperty(intents, fc.nat(), fc.nat(), async (steps, n, k) => {
        const outside = mkdtempSync(join(tmpdir(), 'mimic-outside-'));
        cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
        const ops = primaryOps(steps, outside);
        const once = await fixture(outside);
        const replayed = await fixture(outside);
        try {
          await once.run(ops);
          const prefix = n % (ops.length + 1);
          const from = k % (prefix + 1);
          await replayed.run(ops.slice(0, prefix));
          for (const op of ops.slice(from)) {
            const code = await codeOf(replayed.applier.apply(op));
            if (code === 'none') continue;
            // The one refusal a replay may meet: a write below a name that a later op (already
            // applied) turned into a link. It is the tree's answer, not the applier's memory.
            expect(['write', 'mkdir', 'symlink'], JSON.stringify(op)).toContain(op.kind);
            expect(code).toBe('ERR_UNSAFE_PATH');
            expect(await freshCode(replayed, op)).toBe(code);
          }
          await replayed.applier.commit();
          expect(listing(replayed.root)).toEqual(listing(once.root));
          expect(readdirSync(outside)).toEqual([]);
        } finally {
          once.dispose();
          replayed.dispose();
        }
      }),
      { numRuns: 80 },
    );
  });
});

describe('hard links and databases', () => {
  const bytes = (data: Uint8Array): WriteOp => ({
    ...write('app.db', ''),
    size: data.length,
    hash: hashToHex(strongHash(data)),
    data,
  });

  test('a link op makes a second name of a file here; a missing target asks for a reconcile', async () => {
    const f = await fixture();
    await f.run([write('a.txt', 'one file'), { kind: 'link', path: 'b/also.txt', target: 'a.txt' }]);
    expect(lstatSync(join(f.root, 'b/also.txt')).ino).toBe(lstatSync(join(f.root, 'a.txt')).ino);
    expect(f.applier.manifest.get('b/also.txt')).toMatchObject({
      link: 'a.txt',
      hash: f.applier.manifest.get('a.txt')?.hash,
    });
    // Replayed: nothing changes, no stray temp name is left.
    await f.run([{ kind: 'link', path: 'b/also.txt', target: 'a.txt' }]);
    expect(lstatSync(join(f.root, 'a.txt')).nlink).toBe(2);
    expect(readdirSync(join(f.state, 'tmp'))).toEqual([]);
    expect(await codeOf(f.run([{ kind: 'link', path: 'c.txt', target: 'missing.txt' }]))).toBe(
      'ERR_BASIS_MISMATCH',
    );
  });

  test('a database image lands with the old -wal, -shm and -journal beside it removed first', async () => {
    const f = await fixture();
    for (const c of ['app.db-wal', 'app.db-shm', 'app.db-journal']) writeFileSync(join(f.root, c), 'stale');
    const image = Buffer.alloc(4096);
    image.write('SQLite format 3\0', 'latin1');
    await f.run([bytes(image)]);
    expect(readdirSync(f.root).sort()).toEqual(['app.db']);
    // Anything else keeps its neighbours: only a database's companions go.
    writeFileSync(join(f.root, 'notes.txt-journal'), 'mine');
    await f.run([write('notes.txt', 'plain text, not a database')]);
    expect(readdirSync(f.root).sort()).toEqual(['app.db', 'notes.txt', 'notes.txt-journal']);
  });
});
