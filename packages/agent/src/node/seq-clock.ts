/**
 * When each sequence number came to be (journaled on a primary, received on a mirror) and how
 * many content bytes it carried, for as long as something may still be waiting on it: the age of
 * the oldest op a mirror has not acknowledged (or applied), and the bytes behind it.
 *
 * Bounded: past `capacity` marks, neighbours are merged (the earlier time, the later sequence
 * and byte count), so an age is never under-reported and memory never grows with the backlog.
 */
export class SeqClock {
  readonly #capacity: number;
  /** Parallel arrays, by increasing seq: each mark covers the seqs after the previous one up to its own. */
  #seqs: number[] = [];
  #times: number[] = [];
  /** Content bytes of every op up to and including the mark's seq, since the clock started. */
  #bytes: number[] = [];
  #total = 0;
  /** When the clock started: the time of any seq older than its first mark. */
  readonly #start: number;
  /** Seqs at or below this were there before the clock started, or are forgotten. */
  #base: number;
  /** Cumulative bytes at the base. */
  #baseBytes = 0;

  constructor(baseSeq = 0, now = Date.now(), capacity = 4096) {
    if (capacity < 2) throw new RangeError('capacity must be at least 2');
    this.#capacity = capacity;
    this.#start = now;
    this.#base = baseSeq;
  }

  /** Every seq up to `seq` exists from `now`, `bytes` more content bytes among them. */
  note(seq: number, bytes = 0, now = Date.now()): void {
    const last = this.#seqs.length > 0 ? this.#seqs[this.#seqs.length - 1]! : this.#base;
    if (seq <= last) return;
    this.#total += bytes;
    this.#seqs.push(seq);
    this.#times.push(now);
    this.#bytes.push(this.#total);
    if (this.#seqs.length > this.#capacity) this.#halve();
  }

  /** The last seq noted (or the base). */
  get last(): number {
    return this.#seqs.length > 0 ? this.#seqs[this.#seqs.length - 1]! : this.#base;
  }

  /** Seconds since the oldest seq after `seq` came to be; 0 when there is none. */
  ageAfter(seq: number, now = Date.now()): number {
    if (seq >= this.last) return 0;
    if (seq < this.#base) return Math.max(0, now - this.#start) / 1000;
    const i = this.#firstAbove(seq);
    return Math.max(0, now - this.#times[i]!) / 1000;
  }

  /** Content bytes of the seqs after `seq` (those noted since the clock started). */
  bytesAfter(seq: number): number {
    if (seq >= this.last) return 0;
    if (seq < this.#base) return this.#total - this.#baseBytes;
    const i = this.#firstAbove(seq);
    return this.#total - (i === 0 ? this.#baseBytes : this.#bytes[i - 1]!);
  }

  /** Nothing waits on seqs up to `seq` any more: their marks go. */
  forget(seq: number): void {
    let n = 0;
    while (n < this.#seqs.length && this.#seqs[n]! <= seq) n++;
    if (n === 0) return;
    this.#base = this.#seqs[n - 1]!;
    this.#baseBytes = this.#bytes[n - 1]!;
    this.#seqs.splice(0, n);
    this.#times.splice(0, n);
    this.#bytes.splice(0, n);
  }

  get size(): number {
    return this.#seqs.length;
  }

  #firstAbove(seq: number): number {
    let lo = 0;
    let hi = this.#seqs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#seqs[mid]! > seq) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Merges each pair of neighbours: the earlier time, the later seq and byte count. */
  #halve(): void {
    const seqs: number[] = [];
    const times: number[] = [];
    const bytes: number[] = [];
    for (let i = 0; i < this.#seqs.length; i += 2) {
      const j = Math.min(i + 1, this.#seqs.length - 1);
      seqs.push(this.#seqs[j]!);
      times.push(this.#times[i]!);
      bytes.push(this.#bytes[j]!);
    }
    this.#seqs = seqs;
    this.#times = times;
    this.#bytes = bytes;
  }
}
