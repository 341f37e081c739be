/*
 * A path's metadata on the mirror, set in the one order that keeps all of it: owner first (a
 * chown clears setuid, setgid and file capabilities), then the mode, then the extended
 * attributes (an ACL's mask is the mode's group bits, set just before), then the times, to the
 * nanosecond, last (nothing after them may touch the file).
 */
import { chmodSync } from 'node:fs';
import { relative } from 'node:path';
import { setMtime } from '@mimic/fsmeta';
import type { PathAttrs } from '@mimic/wire';
import type { KeepOptions } from '../../node/keep.js';
import type { DiskEntry, Meta } from '../../node/local-fs.js';
import type { Logger } from '../../node/log.js';
import type { FileRecord } from '../../node/store.js';
import { Owners } from './owners.js';
import { MirrorXattrs } from './xattrs.js';

/** Sets both times of a path (the link itself) or an open file to the primary's mtime. */
export function setTimes(target: string | number, mtimeMs: number, mtimeNs = 0): void {
  setMtime(target, mtimeMs, mtimeNs);
}

/**
 * Gives each folder (absolute paths below `root`) back the time the primary gave it (its
 * manifest row) after entries landed in it, as rsync sets folder times after their contents.
 */
export function restoreFolderTimes(
  root: string,
  manifest: ReadonlyMap<string, FileRecord>,
  folders: Iterable<string>,
): void {
  for (const abs of folders) {
    const rec = manifest.get(relative(root, abs));
    if (rec?.kind !== 'dir') continue;
    try {
      setTimes(abs, rec.mtimeMs, rec.mtimeNs);
    } catch {} // gone or replaced since: a later op says what it became
  }
}

export class PathMeta {
  readonly owners: Owners;
  readonly xattrs: MirrorXattrs;

  constructor(log: Logger) {
    this.owners = new Owners(log);
    this.xattrs = new MirrorXattrs(log);
  }

  /** Which of owner, group, xattrs and ACLs this mirror sets. */
  keep(o: KeepOptions): void {
    this.owners.policy = o;
    this.xattrs.options = o;
  }

  /** Owner, mode (not a link's), xattrs (not a link's) and times of `abs`, as `m` has them. */
  set(abs: string, m: Meta | (PathAttrs & { mtimeMs: number }), kind: DiskEntry['kind']): void {
    this.owners.set({ path: abs }, m);
    if (kind !== 'symlink' && 'mode' in m) {
      chmodSync(abs, m.mode);
      this.xattrs.set(abs, m.xattrs);
    }
    setTimes(abs, m.mtimeMs, m.mtimeNs);
  }

  /** Whether `local` (an lstat of `abs`) differs from `want` in what this mirror keeps. */
  differs(abs: string, local: DiskEntry, want: Meta): boolean {
    if (local.mtimeMs !== want.mtimeMs || local.mtimeNs !== (want.mtimeNs ?? 0)) return true;
    if (this.owners.differs(local, want)) return true;
    if (local.kind === 'symlink') return false;
    return local.mode !== want.mode || this.xattrs.differs(abs, want.xattrs);
  }

  /** What this mirror could not keep of the primary's metadata. */
  get notKept(): string[] {
    return [...this.owners.notKept, ...this.xattrs.notKept];
  }
}
