import { rekey, under } from '../node/paths.js';
import type { FileRecord } from '../node/store.js';

/**
 * The tracker's manifest in memory, with an index by inode kept in step with it: rename
 * pairing looks up vanished paths by inode. Changes here are the in-memory half of a batch;
 * the rows they give (`moves`, `dels`) go to the store in the batch's transaction.
 */
export class ManifestTree {
  readonly files: Map<string, FileRecord>;
  readonly #byIno = new Map<number, FileRecord>();
  /** Told of every path forgotten (content kept for it is dropped). */
  readonly #onForget: (rel: string) => void;

  constructor(files: Map<string, FileRecord>, onForget: (rel: string) => void) {
    this.files = files;
    this.#onForget = onForget;
    for (const rec of files.values()) this.#byIno.set(rec.ino, rec);
  }

  /** The record last remembered with inode `ino`, if it is still known. */
  byIno(ino: number): FileRecord | undefined {
    return this.#byIno.get(ino);
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
      this.forget(rel);
      moves.push(rel);
      const next = { ...rec, path: moved };
      this.remember(next);
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

  remember(rec: FileRecord): void {
    const prev = this.files.get(rec.path);
    if (prev && this.#byIno.get(prev.ino) === prev) this.#byIno.delete(prev.ino);
    this.files.set(rec.path, rec);
    this.#byIno.set(rec.ino, rec);
  }

  forget(rel: string): void {
    const rec = this.files.get(rel);
    if (!rec) return;
    this.#onForget(rel);
    this.files.delete(rel);
    if (this.#byIno.get(rec.ino) === rec) this.#byIno.delete(rec.ino);
  }
}
