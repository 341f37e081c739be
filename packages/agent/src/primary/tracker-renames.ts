import { crashPoint } from '../node/crash-point.js';
import { statEntry } from '../node/local-fs.js';
import type { FileRecord } from '../node/store.js';
import { type BatchRows, type Present, UNSTATED } from './tracker-batch.js';
import type { ManifestTree } from './tracker-tree.js';

/** How long a path seen gone for the first time waits for its new name before it is deleted. */
export const HOLD_GONE_MS = 30;

/**
 * Pairs new paths with vanished ones of the same inode: those are renames, not new data.
 * The old path may have vanished in this batch or not yet been noticed at all (watchers
 * report the two halves of a rename separately); either way it must be gone from disk: a
 * new name of an inode whose old name is still there is a hard link, and a new file.
 * Each pair journals one rename row and moves the old path's subtree in the manifest now;
 * the pairs found leave `gone`, and their `present` entries are marked renamed.
 */
export async function pairRenames(
  tree: ManifestTree,
  abs: (rel: string) => string,
  gone: FileRecord[],
  present: Present[],
  rows: BatchRows,
): Promise<void> {
  const goneByIno = new Map<number, FileRecord>();
  for (const g of gone) goneByIno.set(g.ino, g);
  for (const p of present) {
    if (p.entry === UNSTATED || (p.old && p.old.ino === p.entry.ino)) continue;
    let g = goneByIno.get(p.entry.ino);
    if (!g) {
      const cand = tree.byIno(p.entry.ino);
      if (!cand || cand.path === p.rel) continue;
      const there = await statEntry(abs(cand.path));
      if (there && there.ino === cand.ino) continue; // a hard link, not a rename
      g = cand;
    }
    if (g.kind !== p.entry.kind || (g.kind === 'file' && g.size !== p.entry.size)) continue;
    if (goneByIno.get(g.ino) === g) {
      goneByIno.delete(g.ino);
      gone.splice(gone.indexOf(g), 1);
    }
    rows.ops.push({ kind: 'rename', from: g.path, to: p.rel });
    p.renamed = true;
    tree.moveTree(g.path, p.rel, rows.moves);
    crashPoint('rename-before-journal');
    p.old = tree.files.get(p.rel);
  }
}

/**
 * Watchers report a rename's two halves separately, often the vanished path first. A path
 * seen gone for the first time is held back: the caller looks at it again after HOLD_GONE_MS,
 * so that its new name can claim it as a rename; seen gone on that second look, it is a delete.
 */
export class GoneHoldBack {
  /** Paths seen gone once, waiting for a second look. */
  readonly #held = new Set<string>();

  /**
   * The paths of `gone` to delete now (seen gone before); `hold` is called for each of the
   * others, seen gone for the first time, to schedule its second look.
   */
  release(gone: FileRecord[], hold: (g: FileRecord) => void): FileRecord[] {
    const now: FileRecord[] = [];
    for (const g of gone) {
      if (this.#held.delete(g.path)) {
        now.push(g);
      } else {
        this.#held.add(g.path);
        hold(g);
      }
    }
    return now;
  }
}
