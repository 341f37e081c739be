/*
 * SQLite databases on the primary. A live database is several files changing together (the
 * database, and its -wal or -journal), written in place in an order only SQLite's own locking
 * makes safe to read; copied file by file it can land as a mix of two states, which SQLite calls
 * malformed. So a database found in the folder (by its 16-byte header) is never sent as its
 * bytes on disk: it is read through SQLite itself, in one read transaction (sqlite3_serialize:
 * the committed state at that instant, whatever the journal mode, with no hot journal rolled
 * back by us), and that image is what the mirror gets, as one file landed by rename. Its -wal,
 * -shm and -journal are not replicated: their changes only mark the database to be read again.
 *
 * The image is kept under the state folder, named by path and hash, so a sender (or a mirror's
 * `need` after a restart) reads exactly the version the journal names.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashToHex, strongHash } from '@mimic/delta';
import type Database from 'better-sqlite3';
import { requireCjs } from '../node/require-cjs.js';

const SqliteDatabase: typeof Database = requireCjs('better-sqlite3');

/**
 * The committed state of the database at `abs`, read in one read transaction; null when it
 * cannot be read now (locked past `busyMs` by a writer, a hot journal only a writer may roll
 * back, or not a database after all): the caller looks again shortly.
 */
export function readDatabase(abs: string, busyMs = 100): Buffer | null {
  let db: Database.Database | undefined;
  try {
    db = new SqliteDatabase(abs, { readonly: true, fileMustExist: true, timeout: busyMs });
    return db.serialize();
  } catch {
    return null;
  } finally {
    db?.close();
  }
}

/** The images of the databases of a folder, one file each under `dir`, named by path and hash. */
export class DatabaseImages {
  readonly #dir: string;
  /** The image file each database's journaled version is in. */
  readonly #current = new Map<string, string>();

  constructor(dir: string) {
    this.#dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  /** Reads the database at `abs` (path `rel`) and keeps its image: its hash and bytes, or null. */
  take(rel: string, abs: string): { hash: string; image: Buffer } | null {
    const image = readDatabase(abs);
    if (!image) return null;
    const hash = hashToHex(strongHash(image));
    const file = this.#fileOf(rel, hash);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, image);
    renameSync(tmp, file);
    const previous = this.#current.get(rel);
    if (previous !== undefined && previous !== file) this.#remove(previous);
    this.#current.set(rel, file);
    return { hash, image };
  }

  /** Whether `rel` was read as a database since the start. */
  has(rel: string): boolean {
    return this.#current.has(rel);
  }

  /** The image file of `rel` at `hash`, if it is still kept (a sender reads this, not the live file). */
  fileOf(rel: string, hash: string): string | null {
    const file = this.#fileOf(rel, hash);
    try {
      closeSync(openSync(file, 'r'));
      return file;
    } catch {
      return null;
    }
  }

  /** `rel` is no longer a database of the folder. */
  forget(rel: string): void {
    const file = this.#current.get(rel);
    this.#current.delete(rel);
    if (file !== undefined) this.#remove(file);
  }

  /**
   * After a restart: removes every image but those of `versions` (path and hash of each file
   * record; a database's journaled version is among them). Costs nothing with no images kept.
   */
  prune(versions: Iterable<readonly [rel: string, hash: string]>): void {
    const names = readdirSync(this.#dir);
    if (names.length === 0) return;
    const wanted = new Map<string, string>();
    for (const [rel, hash] of versions) wanted.set(this.#fileOf(rel, hash), rel);
    for (const name of names) {
      const file = join(this.#dir, name);
      const rel = wanted.get(file);
      if (rel === undefined) this.#remove(file);
      else this.#current.set(rel, file);
    }
  }

  #fileOf(rel: string, hash: string): string {
    const key = createHash('sha256').update(rel).digest('hex').slice(0, 32);
    return join(this.#dir, `${key}-${hash}.db`);
  }

  #remove(file: string): void {
    try {
      unlinkSync(file);
    } catch {}
  }
}
