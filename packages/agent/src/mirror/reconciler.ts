import { encodeSignature, signatureFile } from '@mimic/delta';
import type { Epoch, ManifestEntry, Message } from '@mimic/wire';
import { RESERVED_ROOT_NAMES } from '../node/excludes.js';
import { ownerOf, SIGNATURE_MIN_BYTES, walk } from '../node/local-fs.js';
import type { Logger } from '../node/log.js';
import type { Applier } from './applier/applier.js';

const MAX_OUTSTANDING = 1024;

/*
 * A mirror's catch-up by manifest, for when the journal cannot be replayed (a new mirror, or
 * one that fell too far behind). For each page of the primary's manifest: what matches is left
 * alone, folders and links are made locally, files that differ are asked for with `need` (with
 * a signature of our own copy, so that they come as deltas). After the last page, whatever the
 * primary does not have is removed, or kept under diverged/ when the mirror did not write it.
 * Done when the last page is in and every need has its answer.
 */
export class Reconciler {
  readonly seq: number;
  needed = 0;
  readonly #applier: Applier;
  readonly #send: (m: Message) => Promise<void>;
  readonly #epoch: () => Epoch;
  readonly #log: Logger;
  readonly #seen = new Set<string>();
  /** Folder mtimes, set last: files landing in a folder change its time. */
  readonly #dirTimes = new Map<string, number>();
  #wanted: { path: string; signature?: Uint8Array }[] = [];
  /** Index of the next entry of #wanted to ask for (shift() would make asking quadratic). */
  #next = 0;
  #outstanding = 0;
  #lastPage = false;

  constructor(
    applier: Applier,
    seq: number,
    send: (m: Message) => Promise<void>,
    epoch: () => Epoch,
    log: Logger,
  ) {
    this.#applier = applier;
    this.seq = seq;
    this.#send = send;
    this.#epoch = epoch;
    this.#log = log;
  }

  get done(): boolean {
    return this.#lastPage && this.#outstanding === 0 && this.#next === this.#wanted.length;
  }

  async page(entries: ManifestEntry[], last: boolean): Promise<void> {
    for (const e of entries) {
      this.#seen.add(e.path);
      await this.#compare(e);
    }
    if (last) {
      await this.#removeExtras();
      this.#lastPage = true;
      this.#log('reconcile-plan', { entries: this.#seen.size, needed: this.needed });
    }
    await this.#pump();
  }

  /** Needs answered so far (for progress). */
  fetched = 0;

  /** Gives every folder the primary's mtime, deepest first; call once `done`. */
  async finishDirs(): Promise<void> {
    const dirs = [...this.#dirTimes].sort((x, y) => y[0].length - x[0].length);
    for (const [path, mtimeMs] of dirs) await this.#applier.setDirTime(path, mtimeMs);
  }

  answered(): void {
    this.#outstanding--;
    this.fetched++;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    while (this.#outstanding < MAX_OUTSTANDING && this.#next < this.#wanted.length) {
      const w = this.#wanted[this.#next]!;
      this.#wanted[this.#next++] = undefined as never;
      if (this.#next === this.#wanted.length) {
        this.#wanted = [];
        this.#next = 0;
      }
      this.#outstanding++;
      await this.#send({
        type: 'need',
        epoch: this.#epoch(),
        path: w.path,
        ...(w.signature ? { signature: w.signature } : {}),
      });
    }
  }

  async #compare(e: ManifestEntry): Promise<void> {
    const a = this.#applier;
    const local = await a.statLocal(e.path);
    if (e.kind === 'dir') {
      if (
        local?.kind !== 'dir' ||
        local.mode !== e.mode ||
        a.owners.differs(local, e) ||
        !a.manifest.has(e.path)
      ) {
        await a.apply({ kind: 'mkdir', path: e.path, mode: e.mode, mtimeMs: e.mtimeMs, ...ownerOf(e) });
      }
      this.#dirTimes.set(e.path, e.mtimeMs);
      return;
    }
    if (e.kind === 'symlink') {
      if (
        local?.kind === 'symlink' &&
        (await a.readLink(e.path)) === e.target &&
        !a.owners.differs(local, e) &&
        a.manifest.has(e.path)
      )
        return;
      await a.apply({ kind: 'symlink', path: e.path, target: e.target!, mtimeMs: e.mtimeMs, ...ownerOf(e) });
      return;
    }
    if (local?.kind === 'file') {
      const ours = await a.isOurs(e.path, local);
      const rec = a.manifest.get(e.path);
      let same = ours && rec?.hash === e.hash;
      if (!same && !ours && local.size === e.size && (await a.hashLocal(e.path)) === e.hash) {
        await a.adopt(e.path, e.hash!);
        same = true;
      }
      if (same) {
        if (local.mode !== e.mode || local.mtimeMs !== e.mtimeMs || a.owners.differs(local, e))
          await a.fixMeta(e.path, e);
        return;
      }
      this.needed++;
      if (ours && local.size >= SIGNATURE_MIN_BYTES) {
        const sig = await signatureFile(a.root + '/' + e.path);
        this.#wanted.push({ path: e.path, signature: encodeSignature(sig) });
      } else {
        this.#wanted.push({ path: e.path });
      }
      return;
    }
    this.needed++;
    this.#wanted.push({ path: e.path });
  }

  async #removeExtras(): Promise<void> {
    const extras: string[] = [];
    for await (const { rel } of walk(this.#applier.root, (rel) =>
      RESERVED_ROOT_NAMES.includes(rel.split('/', 1)[0]!),
    )) {
      if (!this.#seen.has(rel)) extras.push(rel);
    }
    // Deepest first, so a folder is emptied before it is removed.
    extras.sort((x, y) => y.length - x.length);
    for (const rel of extras) await this.#applier.removeExtra(rel);
  }
}
