import { linkSync, lstatSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACL_ACCESS, ACL_DEFAULT, encodeAcl, readXattrs, setMtime, writeXattrs } from '@mimic/fsmeta';
import { describe } from 'vitest';
import { test } from './helpers/cluster.js';
import { waitFor } from './helpers/polling.js';

/*
 * What `rsync -aHAXS` keeps besides content and mode, end to end through real agents: hard
 * links (one inode on the mirror too, content sent once), extended attributes, POSIX ACLs
 * (access and a folder's default) and times to the nanosecond, folders included; each also
 * when it is the only thing that changed, and through a reconcile by manifest.
 */

const root = process.getuid?.() === 0;
const ALL = { privileged: true, acls: true };

const ACL = encodeAcl([
  { tag: 'user_obj', perm: 6 },
  { tag: 'user', id: 33, perm: 6 },
  { tag: 'group_obj', perm: 4 },
  { tag: 'mask', perm: 6 },
  { tag: 'other', perm: 4 },
]);
const DEFAULT_ACL = encodeAcl([
  { tag: 'user_obj', perm: 7 },
  { tag: 'group_obj', perm: 5 },
  { tag: 'group', id: 1000, perm: 7 },
  { tag: 'mask', perm: 7 },
  { tag: 'other', perm: 5 },
]);

async function tree(d: string): Promise<void> {
  await mkdir(join(d, 'site'));
  await writeFile(join(d, 'site', 'index.html'), '<h1>hi</h1>\n');
  linkSync(join(d, 'site', 'index.html'), join(d, 'site', 'default.html'));
  await writeFile(join(d, 'tagged.txt'), 'has xattrs\n');
  writeXattrs(
    join(d, 'tagged.txt'),
    [
      ['trusted.scanned', Buffer.from('clean')],
      ['user.origin', Buffer.from('upload-42')],
    ],
    ALL,
  );
  await writeFile(join(d, 'shared.txt'), 'www-data may write\n');
  writeXattrs(join(d, 'shared.txt'), [[ACL_ACCESS, ACL]], ALL);
  await mkdir(join(d, 'inherit'));
  writeXattrs(join(d, 'inherit'), [[ACL_DEFAULT, DEFAULT_ACL]], ALL);
  await writeFile(join(d, 'precise.txt'), 'ns\n');
  setMtime(join(d, 'precise.txt'), 1_600_000_000_123, 456_789);
  await mkdir(join(d, 'old'));
  await writeFile(join(d, 'old', 'f'), 'x');
  setMtime(join(d, 'old'), 1_500_000_000_000, 987_654);
}

/** What rsync -aHAXS compares of one path: ns mtime (not a link's), xattrs, which names share an inode. */
function facts(dir: string, rels: readonly string[]): Record<string, unknown> {
  const inodes = new Map<bigint, string>();
  const out: Record<string, unknown> = {};
  for (const rel of rels) {
    const abs = join(dir, rel);
    const st = lstatSync(abs, { bigint: true });
    const first = inodes.get(st.ino) ?? rel;
    inodes.set(st.ino, first);
    out[rel] = {
      mtimeNs: st.mtimeNs,
      mode: st.mode,
      sameFileAs: first,
      xattrs: readXattrs(abs, ALL).map(([k, v]) => `${k}=${v.toString('hex')}`),
    };
  }
  return out;
}

/** Waits until the mirror shows the primary's facts, then compares them (the diff shows what is off). */
async function sameFacts(
  expect: (v: unknown) => { toEqual(v: unknown): void },
  primaryDir: string,
  mirrorDir: string,
  rels: readonly string[],
): Promise<void> {
  const same = () => {
    try {
      return JSON.stringify(facts(mirrorDir, rels), big) === JSON.stringify(facts(primaryDir, rels), big);
    } catch {
      return false; // not there yet
    }
  };
  await waitFor(same, 15_000, 'the mirror to keep hard links, xattrs, ACLs and ns times').catch(() => {});
  expect(facts(mirrorDir, rels)).toEqual(facts(primaryDir, rels));
}

const big = (_: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

const PATHS = [
  'site',
  'site/index.html',
  'site/default.html',
  'tagged.txt',
  'shared.txt',
  'inherit',
  'precise.txt',
  'old',
  'old/f',
];

describe.skipIf(!root)('fidelity (as root)', () => {
  test('hard links, xattrs, ACLs and ns times land as they are on the primary', async ({
    cluster: c,
    expect,
  }) => {
    const pair = await c.pair({ prepare: tree });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    await sameFacts(expect, pair.primaryDir, pair.mirrorDir, PATHS);
    const m = facts(pair.mirrorDir, PATHS) as Record<string, { sameFileAs: string; xattrs: string[] }>;
    expect(m['site/default.html']!.sameFileAs).toBe('site/index.html');
    expect(m['tagged.txt']!.xattrs).toEqual([
      `trusted.scanned=${Buffer.from('clean').toString('hex')}`,
      `user.origin=${Buffer.from('upload-42').toString('hex')}`,
    ]);
  });

  test('a change of xattr, ACL, time or link alone is replicated', async ({ cluster: c, expect }) => {
    const pair = await c.pair({ prepare: tree });
    await c.converged(pair.primaryDir, pair.mirrorDir);
    const p = (rel: string) => join(pair.primaryDir, rel);
    writeXattrs(
      p('tagged.txt'),
      [
        ['user.origin', Buffer.from('upload-43')],
        ['user.seen', Buffer.from('1')],
      ],
      ALL,
    );
    writeXattrs(p('shared.txt'), [], ALL);
    writeXattrs(p('inherit'), [[ACL_DEFAULT, ACL]], ALL);
    setMtime(p('precise.txt'), 1_600_000_000_123, 1);
    linkSync(p('tagged.txt'), p('site/tagged-too.txt'));
    const paths = [...PATHS, 'site/tagged-too.txt'];
    await sameFacts(expect, pair.primaryDir, pair.mirrorDir, paths);
    // New content through the second name of a linked file: both names have it, still one file.
    await writeFile(p('site/default.html'), '<h1>new</h1>\n');
    await sameFacts(expect, pair.primaryDir, pair.mirrorDir, paths);
    await c.converged(pair.primaryDir, pair.mirrorDir);
  });

  test('a reconcile by manifest keeps them too', async ({ cluster: c, expect }) => {
    const primaryDir = await c.tempDir('primary');
    const mirrorDir = await c.tempDir('mirror');
    await tree(primaryDir);
    // A file of the mirror's own: the mirror is not fresh, so it reconciles by manifest.
    await writeFile(join(mirrorDir, 'stray.txt'), 'mine');
    const primary = await c.primary(primaryDir);
    await c.mirror(mirrorDir, primary.url);
    await sameFacts(expect, primaryDir, mirrorDir, PATHS);
  });

  test('--no-acls and --no-xattrs on a mirror leave those alone', async ({ cluster: c, expect }) => {
    const primaryDir = await c.tempDir('primary');
    await tree(primaryDir);
    const primary = await c.primary(primaryDir);
    const noAcls = await c.tempDir('mirror');
    const noXattrs = await c.tempDir('mirror');
    await c.mirror(noAcls, primary.url, { args: ['--no-acls'] });
    await c.mirror(noXattrs, primary.url, { args: ['--no-xattrs'] });
    await c.converged(primaryDir, noAcls);
    await c.converged(primaryDir, noXattrs);
    const names = (dir: string, rel: string) => readXattrs(join(dir, rel), ALL).map(([k]) => k);
    expect(names(noAcls, 'shared.txt')).toEqual([]);
    expect(names(noAcls, 'inherit')).toEqual([]);
    expect(names(noAcls, 'tagged.txt')).toEqual(['trusted.scanned', 'user.origin']);
    expect(names(noXattrs, 'tagged.txt')).toEqual([]);
    expect(names(noXattrs, 'shared.txt')).toEqual([]);
  });
});
