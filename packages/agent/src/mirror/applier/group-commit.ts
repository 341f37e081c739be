import { chmodSync, closeSync, fsync, openSync, renameSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { stepError } from '../../node/errors.js';
import { FileSystemSync } from '../../node/fs-sync.js';
import { timedSync } from '../../node/fs-timing.js';
import { fstatEntry, statEntrySync } from '../../node/local-fs.js';
import { under } from '../../node/paths.js';
import { companionsOf, fdIsSqlite } from '../../node/sqlite-files.js';
import type { FileRecord, Manifest, Store } from '../../node/store.js';
import { type Assembled, discard } from './assembly.js';
import { LandingError } from './errors.js';
import { restoreFolderTimes } from './path-meta.js';

/*
 * Group commit: assembled files wait here, open, until a commit lands them together.
 *
 *   pending   `add` puts a verified temp file in the group (a newer one for the same path
 *             replaces it); a full group starts a background commit.
 *   landing   `commit` (waited for) or `commitSoon` (in the background, at most one at a time)
 *             takes the whole group and lands it: every file made durable (an fsync each, or
 *             one syncfs for a large group), each final path checked and cleared again (the
 *             site), renamed into place, their folders made durable the same way; only then
 *             are the records written, in one transaction with the caller's `record`.
 *   failed    a background landing that failed is reported to its `done`, and again by the
 *             next `landed` (so the next op fails with it); its temp files are removed and
 *             nothing of it is recorded.
 *
 * Every durable step that fails names the path and the step (`stepError`, ERR_LAND).
 */

const fsyncRaw = promisify(fsync);
const fsyncAsync = (fd: number) => timedSync('fsync', () => fsyncRaw(fd));

/**
 * Files rebuilt before one group commit. Larger groups mean fewer fsync rounds, and each round
 * also fsyncs every folder it touched, so a tree of 20,000 files in 200 folders wants large
 * groups. Each pending file holds a descriptor (a lack of them forces an early commit).
 */
const MAX_PENDING = 2048;
const MAX_PENDING_BYTES = 128 * 1024 * 1024;
/**
 * A group of at least this many files is made durable by syncfs (twice: the files before their
 * renames, the renames after), a smaller one by fsync of each file and folder.
 */
export const SYNCFS_MIN_FILES = 64;

/** Where the files of a group go: the applier's tree, with its path safety and clearing. */
export interface LandingSite {
  /**
   * The absolute path `rel` lands at, checked, with anything in the way cleared and its folder
   * made. `parents` holds the folders found or made for this group so far (add to it).
   */
  placeFor(rel: string, parents: Set<string>): Promise<string>;
  /** Runs after a group is in place and recorded (folder times held back for its files). */
  afterLanding(): Promise<void>;
}

interface Landing {
  paths: Set<string>;
  done: Promise<void>;
  over: boolean;
}

export class GroupCommit {
  readonly #root: string;
  readonly #store: Store;
  readonly #manifest: Manifest;
  readonly #site: LandingSite;
  readonly #fsSync: FileSystemSync;
  #pending = new Map<string, Assembled>();
  #pendingBytes = 0;
  /** The commit running in the background (at most one), and the paths it is landing. */
  #landing: Landing | null = null;
  #landingError: Error | null = null;

  constructor(root: string, store: Store, manifest: Manifest, site: LandingSite) {
    this.#root = root;
    this.#store = store;
    this.#manifest = manifest;
    this.#site = site;
    this.#fsSync = new FileSystemSync(root);
  }

  /** Ends the helper that runs syncfs (after the last commit). */
  close(): void {
    this.#fsSync.close();
  }

  get size(): number {
    return this.#pending.size;
  }

  /** A background commit is still on its way (its syncs, renames or record). */
  get landing(): boolean {
    return this.#landing !== null && !this.#landing.over;
  }

  /** A background commit failed and `landed` has not reported it yet. */
  get failed(): boolean {
    return this.#landingError !== null;
  }

  hasPendingUnder(rel: string): boolean {
    for (const p of this.#pending.keys()) if (under(p, rel)) return true;
    return false;
  }

  /** Whether a version of `rel` is still pending or landing (not yet its copy on disk). */
  onItsWay(rel: string): boolean {
    return this.#pending.has(rel) || this.#landing?.paths.has(rel) === true;
  }

  /** Adds a verified file to the group; a full group starts landing in the background. */
  async add(file: Assembled): Promise<void> {
    const prev = this.#pending.get(file.rel);
    if (prev) discard(prev);
    this.#pending.set(file.rel, file);
    this.#pendingBytes += file.rec.size;
    if (this.#pending.size >= MAX_PENDING || this.#pendingBytes >= MAX_PENDING_BYTES) await this.commitSoon();
  }

  /** Waits for the commit running in the background, and reports its failure. */
  async landed(): Promise<void> {
    if (this.#landing) await this.#landing.done;
    this.#landing = null;
    const err = this.#landingError;
    this.#landingError = null;
    if (err) throw err;
  }

  /** See Applier.commit. */
  async commit(record?: () => void): Promise<void> {
    await this.landed();
    await this.#land(this.#take(), record);
  }

  /** See Applier.commitSoon. */
  async commitSoon(record?: () => void, done?: (err?: Error) => void): Promise<void> {
    await this.landed();
    const batch = this.#take();
    const landing: Landing = {
      paths: new Set(batch.map((p) => p.rel)),
      done: Promise.resolve(),
      over: false,
    };
    landing.done = this.#land(batch, record).then(
      () => {
        landing.over = true;
        done?.();
      },
      (cause: Error) => {
        landing.over = true;
        const err = new LandingError(`files did not land: ${cause.message}`, { cause });
        this.#landingError = err;
        done?.(err);
      },
    );
    this.#landing = landing;
  }

  /** Waits for a background commit, dropping its failure (already reported to its `done`). */
  async abandon(): Promise<void> {
    await this.landed().catch(() => {});
  }

  #take(): Assembled[] {
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    this.#pendingBytes = 0;
    return batch;
  }

  async #land(batch: Assembled[], record?: () => void): Promise<void> {
    if (batch.length === 0) {
      if (record) this.#store.tx(record);
      return;
    }
    const bulk = batch.length >= SYNCFS_MIN_FILES && (await this.#fsSync.usable());
    try {
      if (bulk) await this.#syncfs('syncfs before the renames');
      else
        await Promise.all(
          batch.map((p) =>
            fsyncAsync(p.fd).catch((err: unknown) => {
              throw stepError('ERR_LAND', p.rel, 'fsync of the file', err);
            }),
          ),
        );
    } catch (err) {
      for (const p of batch) discard(p);
      throw err;
    }
    const dirs = new Set<string>();
    /** Parent folders already found or made in this group. */
    const parents = new Set<string>();
    const recs: FileRecord[] = [];
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      try {
        const abs = await this.#site.placeFor(p.rel, parents);
        // A database's old -wal or -journal beside its new image would be replayed into it.
        if (fdIsSqlite(p.fd, p.rec.size)) this.#clearCompanions(p.rel, abs);
        try {
          renameSync(p.tmp, abs);
        } catch (err) {
          throw stepError('ERR_LAND', p.rel, 'renaming into place', err);
        }
        dirs.add(dirname(abs));
        recs.push(...this.#identify(p, abs));
      } catch (err) {
        for (const q of batch.slice(i)) {
          if (q.fd >= 0) discard(q);
          else {
            try {
              unlinkSync(q.tmp);
            } catch {}
          }
        }
        throw err;
      }
    }
    if (bulk) await this.#syncfs('syncfs after the renames');
    else await Promise.all([...dirs].map((d) => fsyncDir(d)));
    this.#store.tx(() => {
      for (const r of recs) {
        this.#manifest.set(r.path, r);
        this.#store.putFile(r);
      }
      record?.();
    });
    // The renames changed the times of the folders they landed in.
    restoreFolderTimes(this.#root, this.#manifest, dirs);
    await this.#site.afterLanding();
  }

  /**
   * Removes what SQLite would read beside the database at `abs` (its -wal, -journal, -shm):
   * they belong to the version being replaced (a primary never sends them), and a new image
   * next to an old log is exactly the mix SQLite reports as malformed.
   */
  #clearCompanions(rel: string, abs: string): void {
    for (const c of companionsOf(abs)) {
      try {
        unlinkSync(c);
      } catch {}
    }
    for (const c of companionsOf(rel)) {
      if (!this.#manifest.delete(c)) continue;
      this.#store.deleteFile(c);
    }
  }

  /** A renamed file's record: its identity after the rename, from the descriptor still open. */
  #identify(p: Assembled, abs: string): FileRecord[] {
    // The rename changes its ctime.
    let now = fstatEntry(p.fd);
    closeSync(p.fd);
    p.fd = -1;
    // Created with its mode under the umask the applier saw at start; a program embedding the
    // mirror may have changed the umask since.
    if (now?.kind === 'file' && now.mode !== p.rec.mode) {
      chmodSync(abs, p.rec.mode);
      now = statEntrySync(abs);
    }
    return now ? [{ ...p.rec, ino: now.ino, ctimeMs: now.ctimeMs, mtimeMs: now.mtimeMs }] : [];
  }

  async #syncfs(step: string): Promise<void> {
    try {
      await timedSync('syncfs', () => this.#fsSync.sync());
    } catch (err) {
      throw stepError('ERR_LAND', this.#root, step, err);
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (err) {
    throw stepError('ERR_LAND', dir, 'opening the folder to fsync it', err);
  }
  try {
    await fsyncAsync(fd);
  } catch (err) {
    throw stepError('ERR_LAND', dir, 'fsync of the folder', err);
  } finally {
    closeSync(fd);
  }
}
