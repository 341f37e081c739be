import { closeSync, lstatSync } from 'node:fs';
import {
  attrsOf,
  type DiskEntry,
  fstatEntry,
  openToRead,
  readOpenedVersion,
  sameMeta,
  sameVersion,
  sameXattrs,
} from '../node/local-fs.js';
import {
  companionOf,
  fdIsSqlite,
  isSqliteFile,
  isSqliteHeader,
  SQLITE_MIN_BYTES,
} from '../node/sqlite-files.js';
import type { FileRecord, JournalOp } from '../node/store.js';
import type { XattrReader } from '../node/xattr-reader.js';
import type { RecentContent } from './recent-content.js';
import type { DatabaseImages } from './sqlite-snapshot.js';
import { type BatchRows, metaRow, type Present, stampRead, statsMatch, UNSTATED } from './tracker-batch.js';
import type { HardLinks } from './tracker-links.js';
import { PART_BYTES } from './write-parts.js';

const RETRY_UNSTABLE_MS = 20;
/** A database locked by a writer (or with a hot journal) is read again this soon. */
const RETRY_DATABASE_MS = 50;
/** Kernel timestamps advance in ticks of a few ms; a read this long after a change saw it. */
const CTIME_SLACK_MS = 20;
/** Files at least this large are read again for a late watcher event only after a pause. */
const RECHECK_LATER_BYTES = 8 * 1024 * 1024;
const RECHECK_LATER_MS = 1000;
/** The longest the tracker waits for the sender to take kept content before reading on. */
const ROOM_WAIT_MS = 50;

/** What reading a file needs of the tracker. */
export interface FileReadContext {
  /** Where a relative path is on disk. */
  abs(rel: string): string;
  /** Content of files just read, kept for the sender. */
  recent: RecentContent;
  /** Looks at `rel` again after `ms`. */
  later(rel: string, forced: boolean, ms: number): void;
  /** Journals the batch's rows so far. */
  commit(rows: BatchRows): void;
  /** Extended attributes as sent. */
  xattrs: XattrReader;
  /** Which files have several names. */
  links: HardLinks;
  /** Images of the folder's SQLite databases, sent instead of their live files. */
  images: DatabaseImages;
  /** Drops `rel` from the manifest (a delete row of the batch). */
  drop(rel: string, rows: BatchRows): void;
  /** When the last read of `rel` began, if it was read since the start (kept in the manifest). */
  readAt(rel: string): number | undefined;
}

/**
 * Reads regular files for a batch: a write row for new content, a meta row for new metadata,
 * nothing for a file its stat (or an earlier read) shows unchanged.
 */
export class FileReads {
  readonly #ctx: FileReadContext;
  /** Large files whose second read for a late watcher event is scheduled (see RECHECK_LATER_MS). */
  readonly #recheckDue = new Set<string>();

  constructor(ctx: FileReadContext) {
    this.#ctx = ctx;
  }

  /** `rel` is gone: a second read scheduled for it is no longer due. */
  forget(rel: string): void {
    this.#recheckDue.delete(rel);
    this.#ctx.links.forget(rel);
  }

  /** The look at a regular file: reads it unless its stat shows it unchanged. */
  async look(p: Present, old: FileRecord | undefined, rows: BatchRows): Promise<void> {
    const { rel } = p;
    let readStartMs = Date.now();
    let fd: number | null = null;
    let entry = p.entry;
    if (entry === UNSTATED) {
      fd = openToRead(this.#ctx.abs(rel));
      const found = fd === null ? null : fstatEntry(fd);
      if (found?.kind !== 'file') {
        // Gone, or no longer a regular file: looked at again, through an lstat.
        if (fd !== null) closeSync(fd);
        this.#ctx.later(rel, true, RETRY_UNSTABLE_MS);
        return;
      }
      // `old` is undefined (a batch lstats a listed path the manifest knows): nothing below
      // returns before the read.
      entry = found;
    }
    const base = companionOf(rel);
    if (base !== null && isSqliteFile(this.#ctx.abs(base))) {
      // A database's -wal, -shm or -journal: never sent, but its database is read again.
      if (fd !== null) closeSync(fd);
      if (old) {
        rows.deletes.push({ kind: 'delete', path: rel });
        this.#ctx.drop(rel, rows);
      }
      this.#ctx.later(base, true, 0);
      return;
    }
    const links = this.#ctx.links;
    if (entry.nlink > 1 || links.recordOf(rel)) links.note(rel, entry, old);
    const unchanged = statsMatch(old, entry);
    // A database known here changes through its -wal without a change to its own stat.
    if (p.forced && this.#ctx.images.has(rel)) {
      if (fd !== null) closeSync(fd);
      return this.#lookDatabase(rel, entry, old, rows);
    }
    if (unchanged && !p.forced) return;
    if (!unchanged && !p.forced && old?.hash && sameVersion(old, entry)) {
      // The same version, but its record lacks what a newer release keeps (owners, ns times):
      // filled in from the stat as metadata, the content not read again.
      const xattrs = this.#ctx.xattrs.read(this.#ctx.abs(rel));
      const rec: FileRecord = {
        ...old,
        mode: entry.mode,
        mtimeMs: entry.mtimeMs,
        ...attrsOf({ ...entry, xattrs }),
      };
      if (!xattrs) delete rec.xattrs;
      rows.puts.push(rec);
      rows.metas.push(metaRow(rel, entry));
      return;
    }
    if (entry.nlink > 1 && !p.renamed && this.#asLink(rel, entry, old, rows)) return;
    if (unchanged) {
      // A watcher event can trail the read that already saw its write. If the file is
      // unchanged since and that read began well after the file's last change, skip it.
      const readAt = this.#ctx.readAt(rel);
      if (readAt !== undefined && readAt > entry.ctimeMs + CTIME_SLACK_MS) return;
      // Otherwise a write in the same clock tick as the last change could hide behind equal
      // stats, so the file is read again. For a large file that read waits a little: right
      // now it would compete with sending the version just read.
      if (entry.size >= RECHECK_LATER_BYTES && !this.#recheckDue.delete(rel)) {
        this.#recheckDue.add(rel);
        this.#ctx.later(rel, true, RECHECK_LATER_MS);
        return;
      }
    }
    // Content kept for the sender fills up while the sender waits for the batch's rows:
    // journal what was read so far, and give the sender time to take it. (With no sender
    // taking any, the batch goes on unjournaled: a commit per file would be all it gained.)
    if (entry.size <= PART_BYTES && this.#ctx.recent.full(entry.size)) {
      if (rows.writes.length > 0) this.#ctx.commit(rows);
      await this.#ctx.recent.room(entry.size, ROOM_WAIT_MS);
    }
    // Read into a buffer of its own only when it will be kept for the sender.
    const keep = entry.size <= PART_BYTES && this.#ctx.recent.fits(entry.size) ? PART_BYTES : 0;
    if (fd === null) {
      readStartMs = Date.now();
      fd = openToRead(this.#ctx.abs(rel));
    }
    // A database is read through SQLite instead (sqlite-snapshot.ts), known by its header: in
    // the content read, when that is kept, else from a 16-byte read first.
    if (fd !== null && keep === 0 && fdIsSqlite(fd, entry.size)) {
      closeSync(fd);
      return this.#lookDatabase(rel, entry, old, rows);
    }
    const version = fd === null ? null : await readOpenedVersion(fd, readStartMs, keep, entry);
    if (!version) {
      // Changing under us, or gone: look again shortly.
      this.#ctx.later(rel, true, RETRY_UNSTABLE_MS);
      return;
    }
    if (version.content && version.content.length >= SQLITE_MIN_BYTES && isSqliteHeader(version.content))
      return this.#lookDatabase(rel, entry, old, rows);
    const v = version.entry;
    const xattrs = this.#ctx.xattrs.read(this.#ctx.abs(rel));
    const rec: FileRecord = {
      path: rel,
      kind: 'file',
      size: v.size,
      mtimeMs: v.mtimeMs,
      mode: v.mode,
      ...attrsOf({ ...v, xattrs }),
      ino: v.ino,
      ctimeMs: v.ctimeMs,
      hash: version.hash,
    };
    stampRead(rec, version.readStartMs);
    rows.puts.push(rec);
    if (old?.hash === version.hash && !p.renamed) {
      if (!sameMeta(old, v) || !sameXattrs(old.xattrs, xattrs)) rows.metas.push(metaRow(rel, v));
      this.#linkOthers(rec, v, rows, false);
      return;
    }
    // Same content under a new name: a write of the old name may still be on its way to a
    // mirror, or have been voided (the rename made it look torn). This row lets the sender
    // check what the mirror holds under the new name; usually it leaves as metadata only.
    const write: JournalOp = {
      kind: 'write',
      path: rel,
      mode: v.mode,
      mtimeMs: v.mtimeMs,
      ...attrsOf(v),
      size: v.size,
      hash: version.hash,
    };
    if (old?.hash && old.hash !== version.hash) write.prevHash = old.hash;
    rows.writes.push(write);
    this.#linkOthers(rec, v, rows, true);
    // Content is kept only for a write row: the sender takes (or drops) it at the row.
    if (version.content) this.#ctx.recent.put(rel, version.hash, version.content);
  }

  /**
   * A SQLite database: its image, read through SQLite in one read transaction, is its content
   * (see sqlite-snapshot.ts); locked just now, it is looked at again shortly.
   */
  #lookDatabase(rel: string, entry: DiskEntry, old: FileRecord | undefined, rows: BatchRows): void {
    const got = this.#ctx.images.take(rel, this.#ctx.abs(rel));
    if (!got) {
      this.#ctx.later(rel, true, RETRY_DATABASE_MS);
      return;
    }
    const size = got.image.length;
    const xattrs = this.#ctx.xattrs.read(this.#ctx.abs(rel));
    const { mode, mtimeMs, ino, ctimeMs } = entry;
    const rec: FileRecord = {
      path: rel,
      kind: 'file',
      size,
      mtimeMs,
      mode,
      ...attrsOf({ ...entry, xattrs }),
      ino,
      ctimeMs,
    };
    rec.hash = got.hash;
    rows.puts.push(rec);
    if (old?.hash === got.hash) {
      if (!sameMeta(old, entry) || !sameXattrs(old.xattrs, xattrs)) rows.metas.push(metaRow(rel, entry));
      return;
    }
    const write: JournalOp = {
      kind: 'write',
      path: rel,
      mode,
      mtimeMs,
      ...attrsOf(entry),
      size,
      hash: got.hash,
    };
    if (old?.hash) write.prevHash = old.hash;
    rows.writes.push(write);
    if (size <= PART_BYTES && this.#ctx.recent.fits(size)) this.#ctx.recent.put(rel, got.hash, got.image);
  }

  /**
   * A name of a file another name of which was just read at this very version: it is a link
   * to that name (journaled after that name's write), and its content is not read again.
   */
  #asLink(rel: string, entry: DiskEntry, old: FileRecord | undefined, rows: BatchRows): boolean {
    const links = this.#ctx.links;
    const mine = links.recordOf(rel);
    // Journaled in this batch already, as the link of a name read before it.
    if (mine?.hash && mine.link && sameVersion(mine, entry) && sameMeta(mine, entry)) return true;
    const same = links.sameVersionAs(rel, entry);
    if (!same) return false;
    const [target, known] = same;
    const rec: FileRecord = { ...known, path: rel, link: target };
    rows.puts.push(rec);
    links.remember(rec);
    if (old?.hash !== known.hash || old?.ino !== entry.ino)
      rows.writes.push({ kind: 'link', path: rel, target });
    return true;
  }

  /**
   * The other names of the file `rec` was just read from now hold that version: their records
   * say so, and after new content (which a mirror writes as a new file) they are linked to it.
   */
  #linkOthers(rec: FileRecord, entry: DiskEntry, rows: BatchRows, wrote: boolean): void {
    const links = this.#ctx.links;
    if (entry.nlink < 2) return;
    const { link: _, ...source } = rec;
    links.remember(source);
    for (const [name] of links.others(rec.path, entry)) {
      const r: FileRecord = { ...source, path: name, link: rec.path };
      rows.puts.push(r);
      links.remember(r);
      if (wrote) rows.writes.push({ kind: 'link', path: name, target: rec.path });
    }
  }
}

/**
 * True when every folder above `rel` is a real folder on disk now (no link, no file), each
 * looked up once per batch in `known`. A primary never reads through a link in its root: a
 * folder replaced by a link to /etc is that link, not the files it points to.
 */
export function inRealFolders(rootSlash: string, rel: string, known: Map<string, boolean>): boolean {
  const slash = rel.lastIndexOf('/');
  if (slash < 0) return true;
  const parent = rel.slice(0, slash);
  let ok = known.get(parent);
  if (ok === undefined) {
    ok =
      inRealFolders(rootSlash, parent, known) &&
      lstatSync(rootSlash + parent, { throwIfNoEntry: false })?.isDirectory() === true;
    known.set(parent, ok);
  }
  return ok;
}
