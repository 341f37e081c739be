import { join } from 'node:path';
import { decodeSignature, hashToHex } from '@mimic/delta';
import type { NeedMessage, Op } from '@mimic/wire';
import { attrsOf } from '../node/local-fs.js';
import { rekey, under } from '../node/paths.js';
import type { FileRecord, JournalOp, JournalRow, Store } from '../node/store.js';
import type { OpBatcher } from './op-batcher.js';
import type { RecentContent } from './recent-content.js';
import type { SigningScheduler } from './signing-scheduler.js';
import type { DatabaseImages } from './sqlite-snapshot.js';
import { type WriteSource, wholePart, writeParts } from './write-parts.js';

/** What a session reads of the change tracker. */
export interface SessionTracker {
  readonly manifest: ReadonlyMap<string, FileRecord>;
  /** Content of files just journaled, held for the senders. */
  readonly recent: RecentContent;
  readonly lastSeq: number;
  /** Changes are being resolved or journaled. */
  readonly busy: boolean;
  /** Images of the folder's SQLite databases (see sqlite-snapshot.ts). */
  readonly images: Pick<DatabaseImages, 'has' | 'fileOf'>;
  /** What the welcome says of extended attributes. */
  readonly xattrs: { readonly announced: { acls: boolean; privileged: boolean } | undefined };
}

/** In `#held`: the mirror's copy is not known (its next version travels whole). */
const UNKNOWN = '';

/**
 * What one mirror is sent for a journal row or a `need`: the op that brings its copy to the
 * manifest as it is now, a write as a delta against the version it holds when a signature of
 * that version is at hand. Ops go to the session's OpBatcher.
 */
export class OpSender {
  readonly #root: string;
  readonly #store: Store;
  readonly #tracker: SessionTracker;
  readonly #ops: OpBatcher;
  readonly #signing: SigningScheduler;
  readonly #connected: () => boolean;
  /**
   * Content hash of each file as this connection last sent it: what the mirror holds. UNKNOWN
   * where a send was cut short and the mirror's copy, if any, is not known here.
   */
  #held = new Map<string, string>();

  constructor(
    ctx: { readonly root: string; readonly store: Store; readonly tracker: SessionTracker },
    ops: OpBatcher,
    signing: SigningScheduler,
    connected: () => boolean,
  ) {
    this.#root = ctx.root;
    this.#store = ctx.store;
    this.#tracker = ctx.tracker;
    this.#ops = ops;
    this.#signing = signing;
    this.#connected = connected;
  }

  async sendRow(row: JournalRow): Promise<void> {
    const op = row.op;
    if (op.kind !== 'write') {
      this.#track(op);
      await this.#ops.send(row.seq, this.#withXattrs(op));
      return;
    }
    // Files are sent as they are now, not as they were when journaled: a later row for the
    // same path then finds the mirror already holding that content and sends only metadata.
    const rec = this.#tracker.manifest.get(op.path);
    if (rec?.kind !== 'file') {
      // Gone or no longer a file: whatever the mirror held there is not what we know now.
      this.#held.delete(op.path);
      if (!rec) return this.#ops.send(row.seq, { kind: 'delete', path: op.path });
    }
    if (rec.kind !== 'file' || this.#held.get(op.path) === rec.hash) {
      if (rec.hash) this.#tracker.recent.discard(op.path, rec.hash);
      return this.#ops.send(row.seq, {
        kind: 'meta',
        path: op.path,
        mode: rec.mode,
        mtimeMs: rec.mtimeMs,
        ...attrsOf(rec),
      });
    }
    const held = this.#held.get(op.path);
    // Nothing sent on this connection yet: the mirror holds the journal's previous version.
    const baseHash = held === undefined ? op.prevHash : held === UNKNOWN ? undefined : held;
    const sig = baseHash
      ? (this.#store.getSignature(baseHash) ?? (await this.#signing.now(baseHash)))
      : undefined;
    await this.#sendWrite(row.seq, rec, baseHash && sig ? { hash: baseHash, signature: sig } : undefined);
  }

  /** Answers a `need` with the path as the manifest has it now, at sequence `seq`. */
  async serveNeed(need: NeedMessage, seq: number): Promise<void> {
    const rec = this.#tracker.manifest.get(need.path);
    if (!rec) return this.#ops.send(seq, { kind: 'delete', path: need.path });
    if (rec.kind === 'dir')
      return this.#ops.send(seq, {
        kind: 'mkdir',
        path: rec.path,
        mode: rec.mode,
        mtimeMs: rec.mtimeMs,
        ...attrsOf(rec),
      });
    if (rec.kind === 'symlink')
      return this.#ops.send(seq, {
        kind: 'symlink',
        path: rec.path,
        target: rec.target!,
        mtimeMs: rec.mtimeMs,
        ...attrsOf(rec),
      });
    let base: { hash: string; signature: Uint8Array } | undefined;
    if (need.signature) {
      const sig = decodeSignature(need.signature); // a bad one throws and closes this connection
      base = { hash: hashToHex(sig.fileHash), signature: need.signature };
    }
    await this.#sendWrite(seq, rec, base);
  }

  /**
   * A folder's or file's metadata row as sent: with the attributes the manifest has for it now
   * (the journal keeps none; a later row follows any change since).
   */
  #withXattrs(op: Exclude<JournalOp, { kind: 'write' }>): Op {
    if (op.kind !== 'mkdir' && op.kind !== 'meta') return op;
    const xattrs = this.#tracker.manifest.get(op.path)?.xattrs;
    return xattrs ? { ...op, xattrs } : op;
  }

  /** Keeps `#held` in step with deletes, renames and links sent to the mirror. */
  #track(op: JournalOp): void {
    if (op.kind === 'link') {
      const hash = this.#held.get(op.target);
      if (hash === undefined) this.#held.delete(op.path);
      else this.#held.set(op.path, hash);
      return;
    }
    if (op.kind !== 'delete' && op.kind !== 'rename') return;
    // The new name now holds whatever the mirror had at the old one, which may be unknown here.
    if (op.kind === 'rename') this.#held.delete(op.to);
    const from = op.kind === 'delete' ? op.path : op.from;
    const hash = this.#held.get(from);
    if (hash !== undefined) {
      // A file: nothing is held below it, so there is no need to look through them all.
      this.#held.delete(from);
      if (op.kind === 'rename') this.#held.set(op.to, hash);
      return;
    }
    for (const [path, h] of [...this.#held]) {
      if (!under(path, from)) continue;
      this.#held.delete(path);
      if (op.kind === 'rename') this.#held.set(rekey(path, from, op.to), h);
    }
  }

  async #sendWrite(
    seq: number,
    rec: FileRecord,
    base?: { hash: string; signature: Uint8Array },
  ): Promise<void> {
    const recent = this.#tracker.recent;
    if (base) recent.discard(rec.path, rec.hash!);
    else {
      const content = recent.take(rec.path, rec.hash!);
      if (content) {
        const whole = wholePart(rec, rec.hash!, content, this.#signing.sink);
        await this.#ops.send(seq, whole);
        if (this.#connected()) this.#held.set(rec.path, whole.hash);
        return;
      }
    }
    // A database goes as its image, read through SQLite; never as its live file.
    const images = this.#tracker.images;
    const image = images.has(rec.path) ? images.fileOf(rec.path, rec.hash!) : undefined;
    if (image === null)
      return this.#ops.send(seq, { kind: 'meta', path: rec.path, mode: rec.mode, mtimeMs: rec.mtimeMs });
    return this.#sendParts(seq, {
      abs: image ?? join(this.#root, rec.path),
      path: rec.path,
      mode: rec.mode,
      mtimeMs: rec.mtimeMs,
      ...attrsOf(rec),
      size: rec.size,
      hash: rec.hash!,
      sign: this.#signing.sink,
      ...(base ? { base } : {}),
    });
  }

  /** A file read now, in one part or several: whole, or as a delta against `src.base`. */
  async #sendParts(seq: number, src: WriteSource): Promise<void> {
    try {
      for await (const part of writeParts(src)) {
        await this.#ops.send(seq, part);
        if (!this.#connected()) return;
        if (part.last && !part.abort) this.#held.set(src.path, part.hash);
        // Torn: the mirror kept what it had, which the journal's previous version may not be.
        else if (part.last && !this.#held.has(src.path)) this.#held.set(src.path, UNKNOWN);
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EISDIR' && code !== 'ENOTDIR') throw err;
      // Gone since: the journal has (or will have) its delete; tell the mirror now.
      this.#held.delete(src.path);
      await this.#ops.send(seq, { kind: 'delete', path: src.path });
    }
  }
}
