/*
 * Hard links on the primary: which paths of the tree are names of one file (same device and
 * inode, a link count above one), so that a mirror gets the content once and links the other
 * names to it, as rsync -H does. Only files with more than one link are held here, each with
 * the record it was last journaled with; a name's inode is checked again before it is trusted
 * (a rename or a new file can reuse a name).
 */
import { type DiskEntry, sameVersion, statEntrySync } from '../node/local-fs.js';
import type { FileRecord } from '../node/store.js';

const keyOf = (e: Pick<DiskEntry, 'dev' | 'ino'>): string => `${e.dev}:${e.ino}`;

export class HardLinks {
  readonly #abs: (rel: string) => string;
  /** The names of each linked file, with the record each was last given (null: none yet). */
  readonly #names = new Map<string, Map<string, FileRecord | null>>();
  /** Which file each name was last seen as. */
  readonly #keyOf = new Map<string, string>();

  constructor(abs: (rel: string) => string) {
    this.#abs = abs;
  }

  /**
   * Notes what `rel` is now: one name of a linked file, or (a count of one) none. `known` is the
   * manifest's record of it, kept unless this batch gave it a newer one.
   */
  note(rel: string, entry: DiskEntry, known: FileRecord | undefined): void {
    const key = entry.nlink > 1 ? keyOf(entry) : undefined;
    const was = this.#keyOf.get(rel);
    if (was !== undefined && was !== key) this.forget(rel);
    if (key === undefined) return;
    let names = this.#names.get(key);
    if (!names) this.#names.set(key, (names = new Map()));
    if (!names.get(rel)) names.set(rel, known?.ino === entry.ino ? known : null);
    this.#keyOf.set(rel, key);
  }

  /** The record `rec.path` was just journaled with (it is a name noted before). */
  remember(rec: FileRecord): void {
    const key = this.#keyOf.get(rec.path);
    if (key !== undefined) this.#names.get(key)?.set(rec.path, rec);
  }

  /** `rel` is gone or no longer this file. */
  forget(rel: string): void {
    const key = this.#keyOf.get(rel);
    if (key === undefined) return;
    this.#keyOf.delete(rel);
    const names = this.#names.get(key);
    names?.delete(rel);
    if (names?.size === 0) this.#names.delete(key);
  }

  /** The record `rel` was last given here, if it is a linked file's name. */
  recordOf(rel: string): FileRecord | undefined {
    const key = this.#keyOf.get(rel);
    return key === undefined ? undefined : (this.#names.get(key)?.get(rel) ?? undefined);
  }

  /** The other names of the file `entry` is, still that file on disk now. */
  others(rel: string, entry: DiskEntry): [string, FileRecord | null][] {
    if (entry.nlink < 2) return [];
    const names = this.#names.get(keyOf(entry));
    if (!names) return [];
    const out: [string, FileRecord | null][] = [];
    for (const [name, rec] of names) {
      if (name === rel) continue;
      const now = statEntrySync(this.#abs(name));
      if (now?.kind === 'file' && now.ino === entry.ino && now.dev === entry.dev) out.push([name, rec]);
      else this.forget(name);
    }
    return out;
  }

  /** Another name whose record holds this very version of the file (its content need not be read). */
  sameVersionAs(rel: string, entry: DiskEntry): [string, FileRecord] | undefined {
    for (const [name, rec] of this.others(rel, entry))
      if (rec?.hash !== undefined && sameVersion(rec, entry)) return [name, rec];
    return undefined;
  }
}
