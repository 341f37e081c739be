// Fidelity: what a copy keeps of one tree, mimic's mirror beside `rsync -aHAXS --numeric-ids`,
// in one run. The tree holds the cases a live server has: uploads owned by www-data (33), a
// config owned by uid 1000, a setgid shared folder, a pair of hard links, a 1 GiB sparse image
// with 4 KiB of data, a user.* xattr, a POSIX ACL, a nanosecond mtime and a folder with an old
// mtime. Each property is checked on both copies and printed kept or lost. Needs root.
import { execFileSync } from 'node:child_process';
import { chownSync, closeSync, lstatSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ACL_ACCESS, encodeAcl, readXattrs, setTimesNs, writeXattrs } from '../packages/fsmeta/dist/index.js';
import { fmtBytes, printTable, removeWork, WORK_ROOT } from './lib.mjs';
import { MimicPair } from './replication/sides.mjs';

const GiB = 1024 ** 3;
const NS_MTIME = 1_700_000_000_123_456_789n;
const OLD_DIR_MTIME = 978_307_200_000_000_000n; // 2001-01-01

function makeTree(src) {
  mkdirSync(join(src, 'uploads'), { recursive: true });
  writeFileSync(join(src, 'uploads', 'photo.jpg'), 'jpeg bytes\n');
  chownSync(join(src, 'uploads', 'photo.jpg'), 33, 33);
  chownSync(join(src, 'uploads'), 33, 33);
  writeFileSync(join(src, 'app.conf'), 'listen = 8080\n');
  chownSync(join(src, 'app.conf'), 1000, 1000);
  mkdirSync(join(src, 'shared'));
  chownSync(join(src, 'shared'), 0, 1000);
  execFileSync('chmod', ['2775', join(src, 'shared')]);
  writeFileSync(join(src, 'shared', 'notes.txt'), 'team notes\n');
  writeFileSync(join(src, 'link-a'), 'one inode, two names\n');
  execFileSync('ln', [join(src, 'link-a'), join(src, 'link-b')]);
  const fd = openSync(join(src, 'disk.img'), 'w');
  writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, 512 * 1024 * 1024);
  execFileSync('truncate', ['-s', String(GiB), join(src, 'disk.img')]);
  closeSync(fd);
  writeFileSync(join(src, 'tagged.txt'), 'has an xattr\n');
  writeXattrs(join(src, 'tagged.txt'), [['user.origin', Buffer.from('upload-42')]], {
    privileged: true,
    acls: true,
  });
  writeFileSync(join(src, 'acl.txt'), 'www-data may write\n');
  const acl = encodeAcl([
    { tag: 'user_obj', perm: 6 },
    { tag: 'user', id: 33, perm: 6 },
    { tag: 'group_obj', perm: 4 },
    { tag: 'mask', perm: 6 },
    { tag: 'other', perm: 4 },
  ]);
  writeXattrs(join(src, 'acl.txt'), [[ACL_ACCESS, acl]], { privileged: true, acls: true });
  writeFileSync(join(src, 'precise.txt'), 'nanosecond mtime\n');
  setTimesNs(join(src, 'precise.txt'), NS_MTIME, NS_MTIME);
  mkdirSync(join(src, 'archive'));
  writeFileSync(join(src, 'archive', '2001.txt'), 'old\n');
  setTimesNs(join(src, 'archive'), OLD_DIR_MTIME, OLD_DIR_MTIME);
}

const st = (root, p) => lstatSync(join(root, p), { bigint: true });
const xattrs = (root, p) => readXattrs(join(root, p), { privileged: true, acls: true });
const sameXattr = (a, b, p, name) => {
  const va = xattrs(a, p).find(([n]) => n === name)?.[1];
  const vb = xattrs(b, p).find(([n]) => n === name)?.[1];
  return va !== undefined && vb !== undefined && va.equals(vb);
};

/** Each property: a name and a check of the copy `dst` against the source `src`. */
const PROPERTIES = [
  [
    'upload owned by 33:33',
    (_s, d) => st(d, 'uploads/photo.jpg').uid === 33n && st(d, 'uploads/photo.jpg').gid === 33n,
  ],
  ['uploads folder owned by 33:33', (_s, d) => st(d, 'uploads').uid === 33n && st(d, 'uploads').gid === 33n],
  [
    'config owned by 1000:1000',
    (_s, d) => st(d, 'app.conf').uid === 1000n && st(d, 'app.conf').gid === 1000n,
  ],
  ['shared folder group 1000', (_s, d) => st(d, 'shared').gid === 1000n],
  ['shared folder setgid', (s, d) => (st(d, 'shared').mode & 0o7777n) === (st(s, 'shared').mode & 0o7777n)],
  ['hard links share an inode', (_s, d) => st(d, 'link-a').ino === st(d, 'link-b').ino],
  ['sparse image stays sparse', (_s, d) => st(d, 'disk.img').blocks * 512n < 1024n * 1024n],
  ['user.* xattr', (s, d) => sameXattr(s, d, 'tagged.txt', 'user.origin')],
  ['POSIX ACL', (s, d) => sameXattr(s, d, 'acl.txt', ACL_ACCESS)],
  ['nanosecond mtime', (_s, d) => st(d, 'precise.txt').mtimeNs === NS_MTIME],
  ['folder mtime', (_s, d) => st(d, 'archive').mtimeNs === OLD_DIR_MTIME],
];

const judge = (src, dst) =>
  PROPERTIES.map(([, check]) => {
    try {
      return check(src, dst);
    } catch {
      return false;
    }
  });

async function main() {
  if (process.getuid?.() !== 0)
    throw new Error('bench/fidelity.mjs: run as root (owners and trusted.* need it)');
  const work = join(WORK_ROOT, 'fidelity');
  removeWork(work);
  const src = join(work, 'src');
  const viaRsync = join(work, 'rsync');
  const viaMimic = join(work, 'mimic');
  mkdirSync(src, { recursive: true });
  makeTree(src);
  execFileSync('rsync', ['-aHAXS', '--numeric-ids', `${src}/`, `${viaRsync}/`]);
  const pair = new MimicPair({
    src,
    dst: viaMimic,
    primaryState: join(work, 'primary-state'),
    logDir: join(work, 'logs'),
    name: 'fidelity',
  });
  try {
    await pair.start();
    await pair.waitInSync(300_000);
  } finally {
    await pair.mirror?.stop();
    await pair.primary?.stop();
  }
  const rsyncKept = judge(src, viaRsync);
  const mimicKept = judge(src, viaMimic);
  const mark = (k) => (k ? 'kept' : 'LOST');
  console.log('Fidelity: the same tree copied by rsync -aHAXS --numeric-ids and by a mimic mirror (as root)');
  printTable(
    ['property', 'rsync -aHAXS', 'mimic'],
    PROPERTIES.map(([name], i) => [name, mark(rsyncKept[i]), mark(mimicKept[i])]),
  );
  const disk = (root) => fmtBytes(Number(st(root, 'disk.img').blocks * 512n));
  console.log(`sparse image on disk: source ${disk(src)}, rsync ${disk(viaRsync)}, mimic ${disk(viaMimic)}`);
  const count = (ks) => ks.filter(Boolean).length;
  console.log(
    `kept: rsync ${count(rsyncKept)}/${PROPERTIES.length}, mimic ${count(mimicKept)}/${PROPERTIES.length}`,
  );
  if (process.argv.includes('--keep')) console.log(`kept the work folder: ${work}`);
  else removeWork(work);
}

main().catch((e) => {
  console.error(`bench/fidelity: ${e.message}`);
  process.exit(1);
});
