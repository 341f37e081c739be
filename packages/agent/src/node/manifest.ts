import type { FileRecord } from './store-schema.js';

/*
 * The manifest in memory: what the node knows of every path, kept in columns rather than one
 * object per path. A million records as objects took about 450 bytes each (the object, its
 * hidden class, the hash string, the Map entry); here a path costs its key in one Map, about
 * 60 bytes of typed arrays, and nothing more unless it has a link target, xattrs or a hard-link
 * name. `get` builds the record on each call: callers change a path with `set`, never by
 * writing to a record they were given.
 */

const KINDS = ['file', 'dir', 'symlink'] as const;
const KIND_CODE: Record<FileRecord['kind'], number> = { file: 0, dir: 1, symlink: 2 };

const HAS_UID = 1;
const HAS_GID = 2;
/** The hash is 16 lowercase hex digits, held in `hashHi`/`hashLo`. */
const HASH_PACKED = 4;
/** Something of the record is in `#rare` (a hash of another form, a target, xattrs, a link). */
const HAS_RARE = 8;

const HEX16 = /^[0-9a-f]{16}$/;

/**
 * A copy of `s` that holds only its own characters. A path decoded from a message is a slice
 * of a longer string (msgpackr decodes a message's short strings as slices of one), and one
 * built by joining names is a pair of pointers: kept as a key for good, either held far more
 * than the path. At a million paths, the mirror's slices held 190 MB where copies hold 40 MB.
 */
function ownCopy(s: string): string {
  const copy = Buffer.from(s, 'utf8').toString('utf8');
  return copy === s ? copy : s; // a lone surrogate does not survive UTF-8: keep the original
}
const FIRST_CAPACITY = 1024;

/** The fields few records have, kept aside. */
interface Rare {
  hash?: string;
  target?: string;
  xattrs?: Uint8Array;
  link?: string;
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

export interface ManifestOptions {
  /** Keep an index by inode (`pathOfIno`): the primary pairs renames through it. */
  byIno?: boolean;
}

export class Manifest implements ReadonlyMap<string, FileRecord> {
  readonly [Symbol.toStringTag] = 'Manifest';
  readonly #slots = new Map<string, number>();
  readonly #free: number[] = [];
  readonly #byIno: Map<number, number> | null;
  readonly #rare = new Map<number, Rare>();
  /** The path of each slot in use (the same strings as the keys of `#slots`). */
  #paths: (string | undefined)[] = [];
  /** The walk each slot was last seen in (see `beginWalk`). */
  #walk = new Uint32Array(0);
  #walkNo = 0;
  #capacity = 0;
  #next = 0;
  #kind = new Uint8Array(0);
  #flags = new Uint8Array(0);
  #mode = new Uint32Array(0);
  #mtimeNs = new Uint32Array(0);
  #uid = new Uint32Array(0);
  #gid = new Uint32Array(0);
  #hashHi = new Uint32Array(0);
  #hashLo = new Uint32Array(0);
  #size = new Float64Array(0);
  #mtimeMs = new Float64Array(0);
  #ctimeMs = new Float64Array(0);
  #ino = new Float64Array(0);
  /** When the content of the path was last read (ms; 0: not since the start). Not persisted. */
  #readAt = new Float64Array(0);

  constructor(records: Iterable<FileRecord> = [], options: ManifestOptions = {}) {
    this.#byIno = options.byIno ? new Map() : null;
    for (const rec of records) this.set(rec.path, rec);
  }

  get size(): number {
    return this.#slots.size;
  }

  has(path: string): boolean {
    return this.#slots.has(path);
  }

  get(path: string): FileRecord | undefined {
    const slot = this.#slots.get(path);
    return slot === undefined ? undefined : this.#record(path, slot);
  }

  /** The path whose record has inode `ino` (the last one set with it), with `byIno` only. */
  pathOfIno(ino: number): string | undefined {
    const slot = this.#byIno?.get(ino);
    return slot === undefined ? undefined : this.#paths[slot];
  }

  /**
   * Starts a walk of the tree and returns its number: paths the walk sees are told with
   * `seen`, and `unseen` then gives the known paths it did not see. (A set of every path seen
   * would cost as much again as the keys.) Paths added during the walk count as seen. Walks
   * may overlap (a rescan after lost events while a periodic one runs): a path seen by a later
   * walk counts as seen by an earlier one too, never the other way round.
   */
  beginWalk(): number {
    return ++this.#walkNo;
  }

  seen(path: string, walk: number): void {
    const slot = this.#slots.get(path);
    if (slot !== undefined && this.#walk[slot]! < walk) this.#walk[slot] = walk;
  }

  *unseen(walk: number): IterableIterator<string> {
    for (const [path, slot] of this.#slots) if (this.#walk[slot]! < walk) yield path;
  }

  /** When the content of `path` was last read since the start (ms), if it was. */
  readAt(path: string): number | undefined {
    const slot = this.#slots.get(path);
    const at = slot === undefined ? 0 : this.#readAt[slot]!;
    return at === 0 ? undefined : at;
  }

  /**
   * Sets the record of `path` (`rec.path` is not read: the key is the path). `readAtMs`: when
   * its content was read, if it was just read; otherwise the time kept for the path stays.
   */
  set(path: string, rec: FileRecord, readAtMs?: number): this {
    return this.#put(path, rec, readAtMs, true);
  }

  /** `set`, for a path known to be a string of its own (one read from SQLite): not copied. */
  adopt(path: string, rec: FileRecord): this {
    return this.#put(path, rec, undefined, false);
  }

  #put(path: string, rec: FileRecord, readAtMs: number | undefined, copy: boolean): this {
    let slot = this.#slots.get(path);
    if (slot === undefined) {
      slot = this.#take();
      const key = copy ? ownCopy(path) : path;
      this.#slots.set(key, slot);
      this.#paths[slot] = key;
      this.#readAt[slot] = 0;
      this.#walk[slot] = this.#walkNo;
    } else this.#unindex(slot);
    this.#kind[slot] = KIND_CODE[rec.kind];
    this.#mode[slot] = rec.mode;
    this.#mtimeNs[slot] = rec.mtimeNs ?? 0;
    this.#size[slot] = rec.size;
    this.#mtimeMs[slot] = rec.mtimeMs;
    this.#ctimeMs[slot] = rec.ctimeMs;
    this.#ino[slot] = rec.ino;
    if (readAtMs !== undefined) this.#readAt[slot] = readAtMs;
    let flags = 0;
    if (rec.uid !== undefined) {
      flags |= HAS_UID;
      this.#uid[slot] = rec.uid;
    }
    if (rec.gid !== undefined) {
      flags |= HAS_GID;
      this.#gid[slot] = rec.gid;
    }
    const rare: Rare = {};
    let anyRare = false;
    if (rec.hash !== undefined) {
      if (HEX16.test(rec.hash)) {
        flags |= HASH_PACKED;
        this.#hashHi[slot] = Number.parseInt(rec.hash.slice(0, 8), 16);
        this.#hashLo[slot] = Number.parseInt(rec.hash.slice(8), 16);
      } else {
        rare.hash = rec.hash;
        anyRare = true;
      }
    }
    if (rec.target !== undefined) {
      rare.target = rec.target;
      anyRare = true;
    }
    if (rec.xattrs !== undefined) {
      rare.xattrs = rec.xattrs;
      anyRare = true;
    }
    if (rec.link !== undefined) {
      rare.link = rec.link;
      anyRare = true;
    }
    if (anyRare) {
      flags |= HAS_RARE;
      this.#rare.set(slot, rare);
    } else this.#rare.delete(slot);
    this.#flags[slot] = flags;
    this.#byIno?.set(rec.ino, slot);
    return this;
  }

  delete(path: string): boolean {
    const slot = this.#slots.get(path);
    if (slot === undefined) return false;
    this.#unindex(slot);
    this.#slots.delete(path);
    this.#rare.delete(slot);
    this.#paths[slot] = undefined;
    this.#free.push(slot);
    return true;
  }

  clear(): void {
    this.#slots.clear();
    this.#rare.clear();
    this.#byIno?.clear();
    this.#paths = [];
    this.#free.length = 0;
    this.#next = 0;
  }

  *entries(): MapIterator<[string, FileRecord]> {
    for (const [path, slot] of this.#slots) yield [path, this.#record(path, slot)];
  }

  keys(): MapIterator<string> {
    return this.#slots.keys();
  }

  *values(): MapIterator<FileRecord> {
    for (const [path, slot] of this.#slots) yield this.#record(path, slot);
  }

  [Symbol.iterator](): MapIterator<[string, FileRecord]> {
    return this.entries();
  }

  forEach(fn: (rec: FileRecord, path: string, map: ReadonlyMap<string, FileRecord>) => void): void {
    for (const [path, slot] of this.#slots) fn(this.#record(path, slot), path, this);
  }

  #record(path: string, slot: number): FileRecord {
    const flags = this.#flags[slot]!;
    const rec: FileRecord = {
      path,
      kind: KINDS[this.#kind[slot]!]!,
      size: this.#size[slot]!,
      mtimeMs: this.#mtimeMs[slot]!,
      mode: this.#mode[slot]!,
      ino: this.#ino[slot]!,
      ctimeMs: this.#ctimeMs[slot]!,
    };
    if (flags & HAS_UID) rec.uid = this.#uid[slot]!;
    if (flags & HAS_GID) rec.gid = this.#gid[slot]!;
    if (flags & HASH_PACKED) rec.hash = hex8(this.#hashHi[slot]!) + hex8(this.#hashLo[slot]!);
    const ns = this.#mtimeNs[slot]!;
    if (ns !== 0) rec.mtimeNs = ns;
    if (flags & HAS_RARE) {
      const rare = this.#rare.get(slot)!;
      if (rare.hash !== undefined) rec.hash = rare.hash;
      if (rare.target !== undefined) rec.target = rare.target;
      if (rare.xattrs !== undefined) rec.xattrs = rare.xattrs;
      if (rare.link !== undefined) rec.link = rare.link;
    }
    return rec;
  }

  /** Drops the inode index's entry for `slot`, if it points there. */
  #unindex(slot: number): void {
    const index = this.#byIno;
    if (index && index.get(this.#ino[slot]!) === slot) index.delete(this.#ino[slot]!);
  }

  #take(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#next === this.#capacity) this.#grow();
    return this.#next++;
  }

  #grow(): void {
    const capacity = Math.max(FIRST_CAPACITY, this.#capacity * 2);
    const grown = <T extends Uint8Array | Uint32Array | Float64Array>(
      a: T,
      make: new (n: number) => T,
    ): T => {
      const b = new make(capacity);
      b.set(a);
      return b;
    };
    this.#kind = grown(this.#kind, Uint8Array);
    this.#flags = grown(this.#flags, Uint8Array);
    this.#mode = grown(this.#mode, Uint32Array);
    this.#mtimeNs = grown(this.#mtimeNs, Uint32Array);
    this.#uid = grown(this.#uid, Uint32Array);
    this.#gid = grown(this.#gid, Uint32Array);
    this.#hashHi = grown(this.#hashHi, Uint32Array);
    this.#hashLo = grown(this.#hashLo, Uint32Array);
    this.#size = grown(this.#size, Float64Array);
    this.#mtimeMs = grown(this.#mtimeMs, Float64Array);
    this.#ctimeMs = grown(this.#ctimeMs, Float64Array);
    this.#ino = grown(this.#ino, Float64Array);
    this.#readAt = grown(this.#readAt, Float64Array);
    this.#walk = grown(this.#walk, Uint32Array);
    this.#capacity = capacity;
  }
}
