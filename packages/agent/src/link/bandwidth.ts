/*
 * Bandwidth limits, as rsync's --bwlimit: token buckets on wire bytes (after compression).
 *
 * A bucket fills at `rate` bytes per second up to a burst of BURST_SECONDS of the rate (at
 * least MIN_BURST_BYTES), so small messages leave at once. A send waits only while the bucket
 * is in debt and then takes what it sends, so one large piece may put the bucket in debt: the
 * next send waits it out. Senders cut what they send into `Pacer.chunkBytes` pieces, so no piece
 * outruns the rate by more than a fraction of a second. A rate of null is no limit, and a rate
 * changed at run time applies from the next quarter of a second on.
 */

/** How long the bucket's fill lets a sender run at full speed after a pause. */
const BURST_SECONDS = 0.1;
const MIN_BURST_BYTES = 16 * 1024;
/** Longest single sleep: a changed rate (or none) is seen at least this often. */
const MAX_SLEEP_MS = 250;
/** What a paced sender hands the socket at once: a twentieth of a second of the rate, bounded. */
const CHUNK_SECONDS = 0.05;
const MIN_CHUNK_BYTES = 4 * 1024;
const MAX_CHUNK_BYTES = 256 * 1024;

/** Where a bucket reads the time and sleeps (a test passes a fake one). */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()),
};

/** Checks a limit in bytes per second: a positive finite number, or null (none). */
export function checkRate(rate: number | null | undefined, name: string): number | null {
  if (rate === undefined || rate === null) return null;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0)
    throw new TypeError(`${name}: expected bytes per second > 0, or null for no limit`);
  return rate;
}

export class TokenBucket {
  readonly #clock: Clock;
  #rate: number | null = null;
  #tokens = 0;
  #at: number;

  constructor(rate: number | null, clock: Clock = realClock) {
    this.#clock = clock;
    this.#at = clock.now();
    this.setRate(rate);
  }

  /** Bytes per second; null: no limit. */
  get rate(): number | null {
    return this.#rate;
  }

  get burst(): number {
    return this.#rate === null
      ? Number.POSITIVE_INFINITY
      : Math.max(MIN_BURST_BYTES, this.#rate * BURST_SECONDS);
  }

  /** A new rate; what was taken so far stays taken, and the bucket never holds more than a burst. */
  setRate(rate: number | null): void {
    const was = this.#rate;
    this.#refill();
    this.#rate = checkRate(rate, 'rate');
    if (this.#rate === null) this.#tokens = 0;
    else this.#tokens = was === null ? this.burst : Math.min(this.#tokens, this.burst);
  }

  /** Milliseconds until the bucket is out of debt (0: not in debt, or no limit). */
  wait(): number {
    if (this.#rate === null) return 0;
    this.#refill();
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#rate) * 1000;
  }

  /** Takes `bytes` now whatever the level; returns what `wait()` then says. */
  charge(bytes: number): number {
    if (this.#rate === null) return 0;
    this.#refill();
    this.#tokens -= bytes;
    return this.wait();
  }

  /** Waits while the bucket is in debt, then takes `bytes` (which may put it in debt). */
  async take(bytes: number): Promise<void> {
    // Whole milliseconds, as timers keep them: a sliver of debt must not spin.
    for (let ms = this.wait(); ms > 0; ms = this.wait())
      await this.#clock.sleep(Math.min(Math.ceil(ms), MAX_SLEEP_MS));
    this.charge(bytes);
  }

  #refill(): void {
    const now = this.#clock.now();
    if (this.#rate !== null)
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    this.#at = now;
  }
}

/** What one link's sends pay into: its own bucket and any shared with other links. */
export class Pacer {
  readonly buckets: readonly TokenBucket[];

  constructor(buckets: readonly TokenBucket[]) {
    this.buckets = buckets;
  }

  get limited(): boolean {
    return this.buckets.some((b) => b.rate !== null);
  }

  /** The slowest rate of its buckets (null: none limits). */
  get rate(): number | null {
    let slowest: number | null = null;
    for (const b of this.buckets)
      if (b.rate !== null && (slowest === null || b.rate < slowest)) slowest = b.rate;
    return slowest;
  }

  /** How much to hand the socket at a time while limited. */
  get chunkBytes(): number {
    const rate = this.rate;
    if (rate === null) return MAX_CHUNK_BYTES;
    return Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, Math.round(rate * CHUNK_SECONDS)));
  }

  async take(bytes: number): Promise<void> {
    for (const b of this.buckets) if (b.rate !== null) await b.take(bytes);
  }
}

/**
 * A primary's limits: `perLink` bytes per second for each mirror, `total` across all of them
 * (one bucket every link's pacer shares). Changing them applies to the links open now.
 */
export class SharedLimits {
  readonly #total: TokenBucket;
  readonly #links = new Set<TokenBucket>();
  readonly #clock: Clock;
  #perLink: number | null;

  constructor(perLink: number | null, total: number | null, clock: Clock = realClock) {
    this.#clock = clock;
    this.#perLink = checkRate(perLink, 'perMirror');
    this.#total = new TokenBucket(total, clock);
  }

  get perLink(): number | null {
    return this.#perLink;
  }

  get total(): number | null {
    return this.#total.rate;
  }

  /** A pacer for a new link; `release` it once the link has closed. */
  link(): Pacer {
    const own = new TokenBucket(this.#perLink, this.#clock);
    this.#links.add(own);
    return new Pacer([own, this.#total]);
  }

  release(pacer: Pacer): void {
    for (const b of pacer.buckets) this.#links.delete(b);
  }

  /** The limits now, as status shows them. */
  view(): { perMirror: number | null; total: number | null } {
    return { perMirror: this.#perLink, total: this.#total.rate };
  }

  /** Undefined leaves a limit as it is; null lifts it. */
  set(limits: { perMirror?: number | null; total?: number | null }): void {
    const perLink = limits.perMirror === undefined ? this.#perLink : checkRate(limits.perMirror, 'perMirror');
    const total = limits.total === undefined ? this.#total.rate : checkRate(limits.total, 'total');
    this.#perLink = perLink;
    for (const b of this.#links) b.setRate(perLink);
    this.#total.setRate(total);
  }
}
