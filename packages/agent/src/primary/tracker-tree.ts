import { rekey, under } from '../node/paths.js';
import type { FileRecord, Manifest } from '../node/store.js';

/**
 * The tracker's manifest in memory (loaded with its index by inode: rename pairing looks up
 * vanished paths by inode). Changes here are the in-memory half of a batch;
 * the rows they give (`moves`, `dels`) go to the store in the batch's transaction.
 */
export class ManifestTree {
  readonly files: Manifest;
  /** Told of every path forgotten (content kept for it is dropped). */
  readonly #onForget: (rel: string) => void;

  constructor(files: Manifest, onForget: (rel: string) => void) {
    this.files = files;
    this.#onForget = onForget;
  }

  /** The record last remembered with inode `ino`, if it is still known. */
  byIno(ino: number): FileRecord | undefined {
    const path = this.files.pathOfIno(ino);
    return path === undefined ? undefined : this.files.get(path);
  }

  /** Paths at and below `path`: only a folder needs a scan for its contents. */
  subtree(path: string): string[] {
    const rec = this.files.get(path);
    if (rec && rec.kind !== 'dir') return [path];
    const out: string[] = [];
    for (const rel of this.files.keys()) if (under(rel, path)) out.push(rel);
    return out;
  }

  /**
   * Moves a subtree now; its rows go to `moves` (each old path, then its record under the new
   * one), for the batch's transaction.
   */
  moveTree(from: string, to: string, moves: (FileRecord | string)[]): void {
    for (const rel of this.subtree(from)) {
      const rec = this.files.get(rel)!;
      const moved = rekey(rel, from, to);
      const readAt = this.files.readAt(rel);
      this.forget(rel);
      moves.push(rel);
      const next = { ...rec, path: moved };
      this.files.set(moved, next, readAt);
      moves.push(next);
    }
  }

  /** Forgets a subtree now; its paths go to `dels`, for the batch's transaction. */
  dropTree(path: string, dels: string[]): void {
    for (const rel of this.subtree(path)) {
      dels.push(rel);
      this.forget(rel);
    }
  }

  /** `readAtMs`: when its content was read, if it was just read. */
  remember(rec: FileRecord, readAtMs?: number): void {
    this.files.set(rec.path, rec, readAtMs);
  }

  forget(rel: string): void {
    if (!this.files.has(rel)) return;
    this.#onForget(rel);
    this.files.delete(rel);
  }
}
