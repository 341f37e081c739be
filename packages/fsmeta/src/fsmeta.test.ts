import {
  closeSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ACL_ACCESS,
  type AclEntry,
  dataBytes,
  dataRanges,
  decodeAcl,
  decodeXattrs,
  encodeAcl,
  encodeXattrs,
  finishSparse,
  formatAcl,
  punchHole,
  readXattrs,
  setMtime,
  setTimesNs,
  writeSparse,
  writeXattrs,
  type Xattr,
} from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'fsmeta-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ROOT = { privileged: true, acls: true };
let n = 0;
const file = (content = 'x') => {
  const p = join(dir, `f${n++}`);
  writeFileSync(p, content);
  return p;
};

describe('xattrs', () => {
  it('a set of attributes is written, read back sorted, and removed where no longer wanted', () => {
    const p = file();
    const want: Xattr[] = [
      ['user.b', Buffer.from('2')],
      ['user.a', Buffer.from([0, 1, 2])],
    ];
    expect(writeXattrs(p, want, ROOT)).toBe(true);
    expect(readXattrs(p, ROOT)).toEqual([want[1]!, want[0]!]);
    expect(writeXattrs(p, [want[1]!, want[0]!], ROOT)).toBe(false);
    expect(writeXattrs(p, [['user.a', Buffer.from('new')]], ROOT)).toBe(true);
    expect(readXattrs(p, ROOT)).toEqual([['user.a', Buffer.from('new')]]);
  });

  it('a link keeps its own attributes: its target is not read nor written', () => {
    const target = file();
    writeXattrs(target, [['user.t', Buffer.from('target')]], ROOT);
    const link = join(dir, `l${n++}`);
    symlinkSync(target, link);
    expect(readXattrs(link, ROOT)).toEqual([]);
    expect(readXattrs(target, ROOT)).toEqual([['user.t', Buffer.from('target')]]);
  });

  it('trusted.* is copied only by a privileged policy, and one path is bounded in bytes', () => {
    const p = file();
    writeXattrs(
      p,
      [
        ['trusted.t', Buffer.from('1')],
        ['user.u', Buffer.alloc(3000)],
      ],
      ROOT,
    );
    expect(readXattrs(p, { privileged: false, acls: false }).map(([k]) => k)).toEqual(['user.u']);
    expect(() => readXattrs(p, { ...ROOT, maxBytes: 1000 })).toThrow(/exceed 1000 bytes/);
  });

  it('a missing path is an ENOENT that names it', () => {
    expect(() => readXattrs(join(dir, 'missing'), ROOT)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('the encoding round-trips any sorted list, and refuses bytes that are cut or trail', () => {
    const list = fc
      .uniqueArray(fc.tuple(fc.stringMatching(/^user\.[a-z0-9]{1,20}$/), fc.uint8Array({ maxLength: 64 })), {
        selector: ([k]) => k,
        maxLength: 8,
      })
      .map((l) => l.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, Buffer.from(v)] as Xattr));
    fc.assert(
      fc.property(list, (l) => {
        const bytes = encodeXattrs(l);
        expect(decodeXattrs(bytes)).toEqual(l);
        if (bytes.length > 4)
          expect(() => decodeXattrs(bytes.subarray(0, bytes.length - 1))).toThrow(/cut short/);
        expect(() => decodeXattrs(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/after the last entry/);
      }),
    );
  });
});

describe('POSIX ACLs', () => {
  const acl: AclEntry[] = [
    { tag: 'user_obj', perm: 6 },
    { tag: 'user', id: 33, perm: 6 },
    { tag: 'group_obj', perm: 4 },
    { tag: 'mask', perm: 6 },
    { tag: 'other', perm: 4 },
  ];

  it('an encoded ACL set as its attribute is what the kernel applies to the mode and reads back', () => {
    const p = file();
    writeXattrs(p, [[ACL_ACCESS, encodeAcl(acl)]], ROOT);
    const [name, value] = readXattrs(p, ROOT)[0]!;
    expect(name).toBe(ACL_ACCESS);
    expect(decodeAcl(value)).toEqual(acl);
    expect(formatAcl(decodeAcl(value))).toBe('user::rw-,user:33:rw-,group::r--,mask::rw-,other::r--');
    // The mask stands in for the group bits of the mode, as getfacl and ls show.
    expect(statSync(p).mode & 0o777).toBe(0o664);
  });

  it('bad ACL bytes are refused with what is wrong', () => {
    expect(() => decodeAcl(Buffer.from([2, 0, 0, 0, 1]))).toThrow(/whole entries/);
    expect(() => decodeAcl(Buffer.from([3, 0, 0, 0]))).toThrow(/version 3/);
    expect(() => encodeAcl([{ tag: 'user', perm: 9, id: 1 }])).toThrow(/perm 9/);
    expect(() => encodeAcl([{ tag: 'other', perm: 4, id: 1 }])).toThrow(/takes no id/);
  });
});

describe('sparse files', () => {
  it('data ranges skip the holes of a file, and a hole-keeping copy allocates only its data', () => {
    const src = join(dir, `s${n++}`);
    const fd = openSync(src, 'w');
    writeSync(fd, Buffer.alloc(4096, 7), 0, 4096, 64 * 1024 * 1024);
    finishSparse(fd, 128 * 1024 * 1024);
    const ranges = dataRanges(fd);
    closeSync(fd);
    expect(ranges).toEqual([[64 * 1024 * 1024, 64 * 1024 * 1024 + 4096]]);
    expect(dataBytes(ranges ?? [])).toBe(4096);

    // A copy written through writeSparse from a dense buffer (zeros included) keeps the hole.
    const dst = join(dir, `s${n++}`);
    const out = openSync(dst, 'w');
    const chunk = Buffer.alloc(1024 * 1024);
    chunk.fill(7, 12288, 16384);
    writeSparse(out, chunk, 0);
    finishSparse(out, 1024 * 1024);
    closeSync(out);
    expect(lstatSync(dst).blocks * 512).toBeLessThanOrEqual(8192);
    expect(readFileSync(dst).equals(chunk)).toBe(true);
  });

  it('a punched hole frees the range and keeps the size', () => {
    const p = file('');
    const fd = openSync(p, 'r+');
    writeSync(fd, Buffer.alloc(65536, 1), 0, 65536, 0);
    expect(punchHole(fd, 0, 32768)).toBe(true);
    expect(dataRanges(fd)).toEqual([[32768, 65536]]);
    closeSync(fd);
    expect(statSync(p).size).toBe(65536);
  });
});

describe('nanosecond times', () => {
  it('a time set to the nanosecond reads back exactly, on a link without touching its target', () => {
    const p = file();
    const mtime = 1_234_567_890_123_456_789n;
    setTimesNs(p, mtime + 1n, mtime);
    const st = lstatSync(p, { bigint: true });
    expect(st.mtimeNs).toBe(mtime);
    expect(st.atimeNs).toBe(mtime + 1n);
    const link = join(dir, `l${n++}`);
    symlinkSync(p, link);
    setTimesNs(link, 5_000_000_001n, 5_000_000_001n);
    expect(lstatSync(link, { bigint: true }).mtimeNs).toBe(5_000_000_001n);
    expect(lstatSync(p, { bigint: true }).mtimeNs).toBe(mtime);
    expect(() => setTimesNs(p, 1n, 1.5 as unknown as bigint)).toThrow(/bigint/);
  });

  it('whole ms plus ns set both times of a path or an open file, and bad times are refused', () => {
    const p = file();
    setMtime(p, 1_700_000_000_123, 456_789);
    expect(lstatSync(p, { bigint: true }).mtimeNs).toBe(1_700_000_000_123_456_789n);
    expect(lstatSync(p, { bigint: true }).atimeNs).toBe(1_700_000_000_123_456_789n);
    const fd = openSync(p, 'r');
    try {
      setMtime(fd, 1000, 1);
    } finally {
      closeSync(fd);
    }
    expect(lstatSync(p, { bigint: true }).mtimeNs).toBe(1_000_000_001n);
    expect(() => setMtime(p, 1, 1_000_000)).toThrow(/ns from 0 to 999999/);
    expect(() => setMtime(join(dir, 'missing'), 1, 0)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
