import { dirname } from 'node:path';
import { checkWirePath } from '@mimic/wire';
import { ConfinementError, isBlockedParent, mkdirsNoFollow, safePath } from '../../node/confine.js';
import { statEntrySync } from '../../node/local-fs.js';

/** Folders remembered as checked, at most: past this each path is checked in full. */
const MAX_SAFE_DIRS = 65536;

/**
 * Path safety for the applier: every path from the wire becomes an absolute path under the root
 * only through `safe` (relative, normalised, no parent a symlink or a file), so nothing is
 * written, moved or removed through a link, whatever order operations arrive in.
 *
 * Folders already checked are remembered until an op that could replace one (symlink, delete,
 * rename, removal of a tree) calls `forget`. `clear` is how a file in the way of a folder goes
 * (removed if the mirror's own, else kept under diverged/): see preserve.ts.
 */
export class SafePaths {
  readonly root: string;
  /**
   * The root (an absolute, resolved path) with one trailing slash: a checked wire path appended
   * makes a path without path.join's normalising pass.
   */
  readonly #rootSlash: string;
  readonly #dirs = new Set<string>(['.']);
  readonly #clear: (rel: string) => Promise<void>;

  constructor(root: string, clear: (rel: string) => Promise<void>) {
    this.root = root;
    this.#rootSlash = root.endsWith('/') ? root : `${root}/`;
    this.#clear = clear;
  }

  /** The absolute path for `rel`, refused (ERR_UNSAFE_PATH) if it would pass through a link. */
  async safe(rel: string): Promise<string> {
    const parent = dirname(rel);
    if (this.#dirs.has(parent)) {
      checkWirePath(rel);
      return this.#rootSlash + rel;
    }
    const abs = await safePath(this.root, rel);
    if (parent !== '.' && statEntrySync(dirname(abs))?.kind === 'dir' && this.#dirs.size < MAX_SAFE_DIRS) {
      this.#dirs.add(parent);
    }
    return abs;
  }

  /**
   * `safe` for an op that creates `rel`: a regular file where one of its folders belongs is
   * cleared first (removed if ours, else kept under diverged/), as a later op would have it;
   * a replay after a partly applied batch meets this. A link on the way is still refused.
   */
  async toCreate(rel: string): Promise<string> {
    for (;;) {
      try {
        return await this.safe(rel);
      } catch (err) {
        if (!(err instanceof ConfinementError) || err.blocked?.kind !== 'file') throw err;
        this.forget();
        await this.#clear(err.blocked.at);
      }
    }
  }

  /**
   * `safe`, or null where a parent is a link or a file: for ops that only remove or adjust,
   * for which a path that cannot be reached inside the root is already absent.
   */
  async orAbsent(rel: string): Promise<string | null> {
    try {
      return await this.safe(rel);
    } catch (err) {
      if (isBlockedParent(err)) return null;
      throw err;
    }
  }

  /** Makes the parent folders of `rel` (never through a link); a file of ours in the way goes. */
  async ensureParent(rel: string): Promise<void> {
    const parent = dirname(rel);
    if (parent === '.') return;
    const e = statEntrySync(await this.safe(parent));
    if (e?.kind === 'dir') return;
    if (e) await this.#clear(parent);
    await mkdirsNoFollow(this.root, parent);
  }

  /** Forgets every folder checked (one may have been replaced by a link). */
  forget(): void {
    this.#dirs.clear();
    this.#dirs.add('.');
  }
}
