import { encodeSignature, signatureFile } from '@mimic/delta';
import type { Epoch, ManifestEntry, Message } from '@mimic/wire';
import { RESERVED_ROOT_NAMES } from '../node/excludes.js';
import { attrsOf, SIGNATURE_MIN_BYTES, walk } from '../node/local-fs.js';
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
  /** Content bytes of what is needed. */
  neededBytes = 0;
  readonly #applier: Applier;
  readonly #send: (m: Message) => Promise<void>;
  readonly #epoch: () => Epoch;
  readonly #log: Logger;
  readonly #seen = new Set<string>();
  /** Folder mtimes (ms, ns), set last: files landing in a folder change its time. */
  readonly #dirTimes = new Map<string, [number, number | undefined]>();
  /** Files that are hard links of another entry: linked once that entry has landed. */
  readonly #links: ManifestEntry[] = [];
  /** Hash of each file entry seen, for the links to check their target against. */
  readonly #hashes = new Map<string, string>();
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
      this.#fetchUnlinkable();
      await this.#removeExtras();
      this.#lastPage = true;
      this.#log('reconcile-plan', { entries: this.#seen.size, needed: this.needed });
    }
    await this.#pump();
  }

  /** Needs answered so far (for progress). */
  fetched = 0;

  /**
   * Links each hard link to its entry, now landed, then gives every folder the primary's mtime,
   * deepest first; call once `done`.
   */
  async finish(): Promise<void> {
    const a = this.#applier;
    for (const e of this.#links) await a.apply({ kind: 'link', path: e.path, target: e.link! });
    const dirs = [...this.#dirTimes].sort((x, y) => y[0].length - x[0].length);
    for (const [path, [ms, ns]] of dirs) await a.setDirTime(path, ms, ns);
  }

  /** Links whose target is not in the manifest with their content: fetched as files instead. */
  #fetchUnlinkable(): void {
    const linkable = this.#links.filter((e) => this.#hashes.get(e.link!) === e.hash);
    for (const e of this.#links) {
      if (linkable.includes(e)) continue;
      this.needed++;
      this.neededBytes += e.size;
      this.#wanted.push({ path: e.path });
    }
    this.#links.length = 0;
    this.#links.push(...linkable);
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
    const abs = `${a.root}/${e.path}`;
    if (e.kind === 'dir') {
      if (
        local?.kind !== 'dir' ||
        local.mode !== e.mode ||
        a.meta.owners.differs(local, e) ||
        a.meta.xattrs.differs(abs, e.xattrs) ||
        !a.manifest.has(e.path)
      ) {
        await a.apply({ kind: 'mkdir', path: e.path, mode: e.mode, mtimeMs: e.mtimeMs, ...attrsOf(e) });
      }
      this.#dirTimes.set(e.path, [e.mtimeMs, e.mtimeNs]);
      return;
    }
    if (e.kind === 'symlink') {
      if (
        local?.kind === 'symlink' &&
        (await a.readLink(e.path)) === e.target &&
        !a.meta.owners.differs(local, e) &&
        a.manifest.has(e.path)
      )
        return;
      await a.apply({ kind: 'symlink', path: e.path, target: e.target!, mtimeMs: e.mtimeMs, ...attrsOf(e) });
      return;
    }
    if (e.hash) this.#hashes.set(e.path, e.hash);
    if (e.link !== undefined && e.link !== e.path) {
      // Linked to its entry at the end, unless it is that file here already.
      const target = await a.statLocal(e.link);
      const linked = local?.kind === 'file' && target?.ino === local.ino && target.dev === local.dev;
      if (!linked || a.manifest.get(e.path)?.hash !== e.hash) {
        this.#links.push(e);
        return;
      }
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
        if (a.meta.differs(abs, local, e)) await a.fixMeta(e.path, e);
        return;
      }
      this.needed++;
      this.neededBytes += e.size;
      if (ours && local.size >= SIGNATURE_MIN_BYTES) {
        const sig = await signatureFile(a.root + '/' + e.path);
        this.#wanted.push({ path: e.path, signature: encodeSignature(sig) });
      } else {
        this.#wanted.push({ path: e.path });
      }
      return;
    }
    this.needed++;
    this.neededBytes += e.size;
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
