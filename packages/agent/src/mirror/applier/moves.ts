/*
 * Tree changes that move or add names without new content: a rename (of a file or a whole
 * folder, with its manifest rows), and a hard link (another name of a file already here).
 */
import { linkSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { checkWirePath, type LinkOp } from '@mimic/wire';
import { statEntrySync } from '../../node/local-fs.js';
import { rekey, under } from '../../node/paths.js';
import type { FileRecord, Manifest, Store } from '../../node/store.js';
import { ResyncNeeded } from './errors.js';
import { restoreFolderTimes } from './path-meta.js';
import type { Clearer } from './preserve.js';
import type { SafePaths } from './safe-paths.js';

/** What a record keeps beyond a stat: content hash, link target, hard link, xattrs. */
export type Extra = Pick<FileRecord, 'hash' | 'target' | 'link' | 'xattrs'>;

/** What moves need of the applier. */
export interface MoveSite {
  readonly root: string;
  readonly manifest: Manifest;
  readonly store: Store;
  readonly paths: SafePaths;
  readonly clearer: Clearer;
  /** Where a link is made before it is renamed into place (the assembly's temp folder). */
  readonly tmpDir: string;
  /** Lands files still pending below `rel` first. */
  flushUnder(rel: string): Promise<void>;
  /** Records what `abs` now is as `rel` (its stat and `extra`). */
  record(rel: string, abs: string, extra: Extra): void;
}

/** Temp names of hard links made so far. */
let linksMade = 0;

export async function renameTree(site: MoveSite, from: string, to: string): Promise<void> {
  const { paths, manifest, store } = site;
  // Files still waiting for their commit below either name land first: a rename never
  // moves (or replaces) a folder under a pending file, so no link can redirect it.
  await site.flushUnder(from);
  await site.flushUnder(to);
  paths.forget();
  // Already gone (or below what is now a link): nothing moves, a later op brings the
  // content. Otherwise the new name is checked as strictly as any write.
  const fromAbs = await paths.orAbsent(from);
  if (fromAbs === null || !statEntrySync(fromAbs)) {
    checkWirePath(to); // nothing moves, but a malformed name is refused all the same
    return;
  }
  const toAbs = await paths.toCreate(to);
  await site.clearer.clear(to);
  await paths.ensureParent(to);
  renameSync(fromAbs, toAbs);
  const moved: FileRecord[] = [];
  const top = manifest.get(from);
  if (top && top.kind !== 'dir') moved.push(top);
  else for (const [rel, rec] of manifest) if (under(rel, from)) moved.push(rec);
  for (const rec of moved) manifest.delete(rec.path);
  for (let i = 0; i < moved.length; i++) {
    const rec = moved[i]!;
    const path = rekey(rec.path, from, to);
    moved[i] = { ...rec, path };
    manifest.set(path, moved[i]!);
  }
  store.tx(() => {
    store.deleteTree(from);
    store.deleteTree(to);
    for (const rec of moved) store.putFile(rec);
  });
}

/**
 * `op.path` becomes another name of the file at `op.target`: a hard link made under a temp
 * name and renamed into place. A target that is not a file here means this mirror's copy is
 * not the primary's: it reconciles.
 */
export async function linkFile(site: MoveSite, op: LinkOp): Promise<void> {
  const { paths, manifest } = site;
  await site.flushUnder(op.path);
  await site.flushUnder(op.target);
  paths.forget();
  const from = await paths.orAbsent(op.target);
  const src = from === null ? null : statEntrySync(from);
  const rec = manifest.get(op.target);
  if (from === null || src?.kind !== 'file' || rec?.kind !== 'file' || !rec.hash)
    throw new ResyncNeeded(`link ${op.path}: ${op.target} is not a file on this mirror`);
  const abs = await paths.toCreate(op.path);
  const here = statEntrySync(abs);
  if (here?.ino !== src.ino || here.dev !== src.dev) {
    await site.clearer.clear(op.path);
    await paths.ensureParent(op.path);
    const tmp = `${site.tmpDir}/link-${process.pid}-${(linksMade++).toString(36)}.part`;
    linkSync(from, tmp);
    renameSync(tmp, abs);
    restoreFolderTimes(site.root, manifest, [dirname(abs)]);
  }
  site.record(op.path, abs, {
    hash: rec.hash,
    link: op.target,
    ...(rec.xattrs ? { xattrs: rec.xattrs } : {}),
  });
}
