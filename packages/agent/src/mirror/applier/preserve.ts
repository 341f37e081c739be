import { readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { lstat, mkdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DiskEntry } from '../../node/local-fs.js';
import { statEntrySync } from '../../node/local-fs.js';
import type { Logger } from '../../node/log.js';
import type { Manifest } from '../../node/store.js';
import type { SafePaths } from './safe-paths.js';

/**
 * Moves a path the mirror did not write (a local edit, or a file found in a folder a mirror
 * started on) to `<state>/diverged/<epoch>/<path>` so that nothing is silently destroyed.
 * An existing copy there gets a numbered suffix.
 */
export async function preserve(root: string, divergedDir: string, rel: string): Promise<string> {
  let dest = join(divergedDir, rel);
  await mkdir(dirname(dest), { recursive: true });
  for (
    let i = 1;
    await lstat(dest).then(
      () => true,
      () => false,
    );
    i++
  )
    dest = `${join(divergedDir, rel)}.${i}`;
  await rename(join(root, rel), dest);
  return dest;
}

/** What the applier knows of its tree, as clearing needs it (the Applier itself). */
export interface TreeState {
  readonly manifest: Manifest;
  /** Paths this node wrote as a primary after its epoch was superseded: kept, never overwritten. */
  readonly keep: Set<string>;
  /** How many paths were moved under diverged/. */
  preserved: number;
}

/** True when the path on disk is exactly what this mirror last wrote there. */
export function isOurs(tree: TreeState, rel: string, e: DiskEntry | null): boolean {
  const rec = tree.manifest.get(rel);
  if (!e) return true;
  if (tree.keep.has(rel) && e.kind !== 'dir') return false;
  if (!rec || rec.kind !== e.kind) return false;
  if (e.kind === 'dir') return true;
  return rec.size === e.size && rec.mtimeMs === e.mtimeMs && rec.ino === e.ino;
}

/**
 * Clears the way for new entries: what the mirror wrote itself is removed, anything else (a
 * local edit, a file it never wrote) is moved under diverged/ first. Only the manifest in
 * memory is updated; the caller drops the store's rows.
 */
export class Clearer {
  readonly #tree: TreeState;
  readonly #paths: SafePaths;
  readonly #diverged: () => string;
  readonly #log: Logger;

  constructor(tree: TreeState, paths: SafePaths, diverged: () => string, log: Logger) {
    this.#tree = tree;
    this.#paths = paths;
    this.#diverged = diverged;
    this.#log = log;
  }

  /** Clears the way for a new entry at `rel`: keeps a local edit under diverged/, removes our own. */
  async clear(rel: string): Promise<void> {
    const abs = await this.#paths.safe(rel);
    const e = statEntrySync(abs);
    if (!e) return;
    if (e.kind === 'dir') {
      await this.#removeTree(rel);
      return;
    }
    if (isOurs(this.#tree, rel, e)) unlinkSync(abs);
    else await this.#preserve(rel);
    this.#tree.manifest.delete(rel);
  }

  async #preserve(rel: string): Promise<void> {
    const dest = await preserve(this.#paths.root, this.#diverged(), rel);
    this.#tree.keep.delete(rel);
    this.#tree.preserved++;
    this.#log('preserved', { path: rel, to: dest });
  }

  async #removeTree(rel: string): Promise<void> {
    const abs = await this.#paths.safe(rel);
    this.#paths.forget();
    let names: string[] = [];
    try {
      names = readdirSync(abs);
    } catch {
      return;
    }
    for (const name of names) {
      const child = `${rel}/${name}`;
      const e = statEntrySync(join(abs, name));
      if (!e) continue;
      if (e.kind === 'dir') await this.#removeTree(child);
      else if (isOurs(this.#tree, child, e)) unlinkSync(join(abs, name));
      else await this.#preserve(child);
      this.#tree.manifest.delete(child);
    }
    try {
      rmdirSync(abs);
    } catch {
      await this.#preserve(rel);
    }
    this.#tree.manifest.delete(rel);
  }
}
