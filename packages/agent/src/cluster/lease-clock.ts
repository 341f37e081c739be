/*
 * The lease as its holder must count it. etcd expires a lease `ttl` after the last keepalive it
 * received; that was no earlier than when the holder sent it. So the holder may act until
 * `sent + ttl - margin` of the last keepalive that was answered, and not a moment longer,
 * whatever its timers do. The margin covers clock rate differences and the holder's own
 * reaction time (it checks before each send; a send takes well under it).
 */
export class LeaseClock {
  readonly ttlMs: number;
  readonly marginMs: number;
  #validUntil = Number.NEGATIVE_INFINITY;
  readonly #now: () => number;

  constructor(ttlSeconds: number, now: () => number = Date.now) {
    this.ttlMs = ttlSeconds * 1000;
    // A fifth of the TTL, at least 500 ms and at most 3 s: 2 s of a 10 s lease.
    this.marginMs = Math.min(3000, Math.max(500, this.ttlMs / 5));
    this.#now = now;
  }

  /** A keepalive sent at `sentAt` was answered with the lease's TTL (seconds; 0: expired). */
  answered(sentAt: number, ttlSeconds: number): void {
    if (ttlSeconds <= 0) {
      this.#validUntil = Number.NEGATIVE_INFINITY;
      return;
    }
    this.#validUntil = Math.max(
      this.#validUntil,
      sentAt + Math.min(ttlSeconds * 1000, this.ttlMs) - this.marginMs,
    );
  }

  /** The lease is known lost: revoked, or expired in etcd. */
  lost(): void {
    this.#validUntil = Number.NEGATIVE_INFINITY;
  }

  valid(): boolean {
    return this.#now() < this.#validUntil;
  }

  /** Milliseconds left (negative: past). */
  get leftMs(): number {
    return this.#validUntil - this.#now();
  }

  /** How often to send keepalives: four per margin-shortened TTL. */
  get intervalMs(): number {
    return Math.max(100, (this.ttlMs - this.marginMs) / 4);
  }
}
