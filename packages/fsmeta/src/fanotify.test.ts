import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAN, FanotifyError, FanotifyWatch, mountsBelow, probeFanotify } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'fsmeta-fanotify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const asRoot = process.getuid?.() === 0;
const available = asRoot && probeFanotify(dir) === null;
let n = 0;

/** A fresh folder under the test folder, watched; the watch is closed after the test. */
function watched(): { root: string; watch: FanotifyWatch } {
  const root = join(dir, `t${n++}`);
  mkdirSync(root);
  const watch = new FanotifyWatch(root);
  return { root, watch };
}

/** Every event until the queue is quiet: path → the union of its masks. */
function drain(watch: FanotifyWatch): Map<string, number> {
  const seen = new Map<string, number>();
  for (;;) {
    // (No check of `overflow`: the whole filesystem's events share the queue, other tests' too.)
    const batch = watch.read(50);
    if (batch.paths.length === 0 && !batch.overflow) return seen;
    batch.paths.forEach((p, i) => {
      seen.set(p, (seen.get(p) ?? 0) | batch.masks[i]!);
    });
  }
}

const has = (mask: number | undefined, bit: number) => mask !== undefined && (mask & bit) !== 0;

describe.skipIf(!available)('a fanotify watch', () => {
  it('names created, written and removed entries relative to the root', () => {
    const { root, watch } = watched();
    try {
      mkdirSync(join(root, 'a/b'), { recursive: true });
      writeFileSync(join(root, 'a/b/f.txt'), 'hello');
      writeFileSync(join(root, 'top.txt'), 'top');
      let seen = drain(watch);
      expect(has(seen.get('a'), FAN.CREATE | FAN.ONDIR)).toBe(true);
      expect(has(seen.get('a/b'), FAN.CREATE)).toBe(true);
      expect(has(seen.get('a/b/f.txt'), FAN.CREATE)).toBe(true);
      expect(has(seen.get('a/b/f.txt'), FAN.CLOSE_WRITE)).toBe(true);
      expect(has(seen.get('top.txt'), FAN.MODIFY)).toBe(true);
      expect(seen.get('a/b/f.txt')! & FAN.ONDIR).toBe(0);

      rmSync(join(root, 'a'), { recursive: true });
      seen = drain(watch);
      expect(has(seen.get('a'), FAN.DELETE)).toBe(true);
      expect(has(seen.get('a'), FAN.ONDIR)).toBe(true);
    } finally {
      watch.close();
    }
  });

  it('follows a renamed folder: later events carry its new path', () => {
    const { root, watch } = watched();
    try {
      mkdirSync(join(root, 'old'));
      writeFileSync(join(root, 'old/one'), '1');
      drain(watch); // the folder's path is now known to the watch
      renameSync(join(root, 'old'), join(root, 'new'));
      writeFileSync(join(root, 'new/two'), '2');
      const seen = drain(watch);
      expect(has(seen.get('old'), FAN.MOVED_FROM)).toBe(true);
      expect(has(seen.get('new'), FAN.MOVED_TO)).toBe(true);
      expect(has(seen.get('new/two'), FAN.CREATE)).toBe(true);
      expect([...seen.keys()].filter((p) => p.startsWith('old/'))).toEqual([]);
    } finally {
      watch.close();
    }
  });

  it('reports renames of files, in and out of folders', () => {
    const { root, watch } = watched();
    try {
      mkdirSync(join(root, 'd'));
      writeFileSync(join(root, 'f'), 'x');
      drain(watch);
      renameSync(join(root, 'f'), join(root, 'd/g'));
      const seen = drain(watch);
      expect(has(seen.get('f'), FAN.MOVED_FROM)).toBe(true);
      expect(has(seen.get('d/g'), FAN.MOVED_TO)).toBe(true);
    } finally {
      watch.close();
    }
  });

  it('leaves out what happens beside the root on the same filesystem', () => {
    const { root, watch } = watched();
    const beside = `${root}-beside`;
    try {
      mkdirSync(beside);
      writeFileSync(join(beside, 'elsewhere'), 'x');
      writeFileSync(join(root, 'here'), 'y');
      expect([...drain(watch).keys()]).toEqual(['here']);
    } finally {
      watch.close();
      rmSync(beside, { recursive: true, force: true });
    }
  });

  it('says so when the queue overflowed', () => {
    const { root, watch } = watched();
    try {
      // The kernel queues 16,384 events per watch; each folder made here is one.
      for (let i = 0; i < 17_000; i++) mkdirSync(join(root, `d${i}`));
      let overflow = false;
      let paths = 0;
      for (;;) {
        const batch = watch.read(0);
        overflow ||= batch.overflow;
        paths += batch.paths.length;
        if (batch.paths.length === 0 && !batch.overflow) break;
      }
      expect(overflow).toBe(true);
      expect(paths).toBeLessThan(17_000);
    } finally {
      watch.close();
    }
  });

  it('refuses a read after close, and closing twice is fine', () => {
    const { watch } = watched();
    watch.close();
    watch.close();
    expect(() => watch.read(0)).toThrow(FanotifyError);
  });
});

describe('fanotify errors', () => {
  it('a missing root is ERR_FANOTIFY naming the errno', () => {
    const err = probeFanotify(join(dir, 'missing'));
    expect(err).toBeInstanceOf(FanotifyError);
    expect(err?.code).toBe('ERR_FANOTIFY');
    expect(err?.errno).toBe('ENOENT');
  });

  it.skipIf(!asRoot)('a filesystem without file handles (/proc) is refused', () => {
    const err = probeFanotify('/proc');
    expect(err?.code).toBe('ERR_FANOTIFY');
  });

  it.skipIf(asRoot)('without root, a watch is refused (EPERM)', () => {
    expect(probeFanotify(dir)?.errno).toBe('EPERM');
  });
});

describe('mountsBelow', () => {
  it('lists the mount points under a folder, not the folder itself', () => {
    expect(mountsBelow(dir)).toEqual([]);
    const below = mountsBelow('/');
    expect(below).not.toContain('/');
    if (below.length > 0) expect(below.every((p) => p.startsWith('/'))).toBe(true);
  });
});
