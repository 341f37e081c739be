/**
 * The content of small files the change tracker has just read and hashed, kept for the sender:
 * a file journaled a moment ago usually leaves for its mirrors right after, and reading and
 * hashing it a second time was a third of the primary's work in an initial sync. Bounded in
 * bytes; when full, new content is not kept (the sender, behind the tracker, reaches the oldest
 * first and takes it, which makes room). An entry is only used for the version (hash) it holds.
 *
 * While a sender is taking content, the tracker waits for room (`room`) rather than read past
 * what is kept, which would make the sender read those files a second time: on a CPU-bound
 * initial sync that second read made the sender slower still, and the tracker further ahead.
 */

export interface RecentContentTiming {
  /**
   * A sender that took content this recently is still taking it, and room is worth waiting
   * for: a sender pauses while its mirror makes a batch durable or its send window is full.
   */
  takingMs: number;
  /**
   * Content held this long is not going to be taken soon (its mirror went away, or no mirror
   * needed that version): once a sender has taken any, it is dropped when room is wanted, oldest
   * first, so that what is read next can be kept instead. Before any sender took content, what
   * is held stays: it is the start of the journal, where the first mirror to come begins.
   */
  abandonedMs: number;
}

const TIMING: RecentContentTiming = { takingMs: 1000, abandonedMs: 5000 };
/**
 * A waiting reader resumes once this fraction of the bound is free: it then journals and the
 * sender takes in steps of some hundreds of small files, not file by file.
 */
const ROOM_STEP = 8;
export class RecentContent {
  readonly #maxBytes: number;
  #bytes = 0;
  /** In the order put (a path put again moves to the end): the oldest first. */
  #map = new Map<string, { hash: string; data: Uint8Array; at: number }>();
  readonly #timing: RecentContentTiming;
  #takenAt = Number.NEGATIVE_INFINITY;
  #roomWaiter: { bytes: number; wake: () => void } | null = null;

  constructor(maxBytes: number, timing: RecentContentTiming = TIMING) {
    this.#maxBytes = maxBytes;
    this.#timing = timing;
  }

  put(path: string, hash: string, data: Uint8Array): void {
    this.delete(path);
    if (!this.fits(data.length)) return;
    this.#map.set(path, { hash, data, at: Date.now() });
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
    this.#takenAt = Date.now();
    return e.data;
  }

  delete(path: string): void {
    const e = this.#map.get(path);
    if (!e) return;
    this.#map.delete(path);
    this.#bytes -= e.data.length;
    const w = this.#roomWaiter;
    if (w && this.fits(w.bytes) && this.#bytes <= this.#maxBytes - this.#maxBytes / ROOM_STEP) w.wake();
  }

  /** Drops the content of `path` if it is the version `hash` (a sender that had no use for it). */
  discard(path: string, hash: string): void {
    if (this.#map.get(path)?.hash === hash) this.delete(path);
  }

  /**
   * Content of `bytes` would not be kept now, and a sender is taking content: `room` waits.
   * Content held past `abandonedMs` is dropped here first.
   */
  full(bytes: number): boolean {
    if (this.fits(bytes)) return false;
    if (this.#takenAt === Number.NEGATIVE_INFINITY) return false;
    const now = Date.now();
    const before = now - this.#timing.abandonedMs;
    for (const [path, e] of this.#map) {
      if (e.at > before) break;
      this.delete(path);
    }
    return !this.fits(bytes) && now - this.#takenAt <= this.#timing.takingMs;
  }

  /**
   * Resolves at once if content of `bytes` would be kept now or no sender is taking content;
   * otherwise once the sender has made room (see ROOM_STEP), or after `maxWaitMs`: a slow
   * sender slows the reader to its pace, one that stops taking holds it up no longer than
   * `takingMs`. One waiter at a time (the tracker).
   */
  room(bytes: number, maxWaitMs: number): Promise<void> {
    if (!this.full(bytes)) return Promise.resolve();
    this.#roomWaiter?.wake();
    return new Promise((resolve) => {
      const timer = setTimeout(() => waiter.wake(), maxWaitMs);
      const waiter = {
        bytes,
        wake: () => {
          clearTimeout(timer);
          if (this.#roomWaiter === waiter) this.#roomWaiter = null;
          resolve();
        },
      };
      this.#roomWaiter = waiter;
    });
  }

  get bytes(): number {
    return this.#bytes;
  }
}
