/**
 * The content of small files the change tracker has just read and hashed, kept for the sender:
 * a file journaled a moment ago usually leaves for its mirrors right after, and reading and
 * hashing it a second time was a third of the primary's work in an initial sync. Bounded in
 * bytes; when full, new content is not kept (the sender, behind the tracker, reaches the oldest
 * first and takes it, which makes room). An entry is only used for the version (hash) it holds.
 */
export class RecentContent {
  readonly #maxBytes: number;
  #bytes = 0;
  #map = new Map<string, { hash: string; data: Uint8Array }>();

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  put(path: string, hash: string, data: Uint8Array): void {
    this.delete(path);
    if (!this.fits(data.length)) return;
    this.#map.set(path, { hash, data });
    this.#bytes += data.length;
  }

  /** Whether content of `bytes` would be kept now. */
  fits(bytes: number): boolean {
    return this.#bytes + bytes <= this.#maxBytes;
  }

  /** The content of `path` if what is held is the version `hash`; it is no longer held after. */
  take(path: string, hash: string): Uint8Array | undefined {
    const e = this.#map.get(path);
    if (e?.hash !== hash) return undefined;
    this.delete(path);
    return e.data;
  }

  delete(path: string): void {
    const e = this.#map.get(path);
    if (!e) return;
    this.#map.delete(path);
    this.#bytes -= e.data.length;
  }

  get bytes(): number {
    return this.#bytes;
  }
}
