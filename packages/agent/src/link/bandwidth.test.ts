import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type Clock, type Pacer, SharedLimits, TokenBucket } from './bandwidth.js';

/** Time that moves only when every sleeper has been woken in order: timers on a fake clock. */
class FakeClock implements Clock {
  t = 0;
  #timers: { at: number; wake: () => void }[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      this.#timers.push({ at: this.t + ms, wake });
      this.#timers.sort((a, b) => a.at - b.at);
    });
  }

  /** Runs the timers (and what they wake) until none is left or `until` is reached. */
  async run(until = Number.POSITIVE_INFINITY): Promise<void> {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const next = this.#timers[0];
      if (!next || next.at > until) return;
      this.#timers.shift();
      this.t = next.at;
      next.wake();
    }
  }
}

const KiB = 1024;

describe('a token bucket on wire bytes', () => {
  test('lets a burst go at once, then holds the rate over time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 10 * KiB, max: 100 * 1024 * KiB }),
        fc.array(fc.integer({ min: 1, max: 300 * KiB }), { minLength: 1, maxLength: 60 }),
        async (rate, pieces) => {
          const clock = new FakeClock();
          const bucket = new TokenBucket(rate, clock);
          let before = 0;
          const done = (async () => {
            for (const p of pieces) {
              await bucket.take(p);
              // Each piece leaves once what went before it is paid for, beyond one burst.
              const due = Math.max(0, ((before - bucket.burst) / rate) * 1000);
              expect(clock.now()).toBeGreaterThanOrEqual(due - 1e-6);
              expect(clock.now()).toBeLessThanOrEqual(due + 1);
              before += p;
            }
          })();
          await clock.run();
          await done;
        },
      ),
      { numRuns: 200 },
    );
  });

  test('ten seconds of 4 KiB pieces at 200 KiB/s move 2,000 KiB and at most a burst more', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(200 * KiB, clock);
    let sent = 0;
    const sending = (async () => {
      for (;;) {
        await bucket.take(4 * KiB);
        if (clock.now() > 10_000) return;
        sent += 4 * KiB;
      }
    })();
    await clock.run(10_000);
    await clock.run(10_250);
    await sending;
    expect(sent).toBeGreaterThanOrEqual(10 * 200 * KiB);
    expect(sent).toBeLessThanOrEqual(10 * 200 * KiB + bucket.burst + 4 * KiB);
  });

  test('charges what was read and says how long to pause', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(100 * KiB, clock);
    expect(bucket.charge(bucket.burst)).toBe(0);
    expect(bucket.charge(50 * KiB)).toBeCloseTo(500);
    clock.t = 250;
    expect(bucket.wait()).toBeCloseTo(250);
    clock.t = 10_000;
    expect(bucket.wait()).toBe(0);
  });

  test('a new rate applies to a sender waiting now; none lifts the limit', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(10 * KiB, clock);
    await bucket.take(bucket.burst + 100 * KiB); // ten seconds of debt
    const next = bucket.take(1);
    let leftAt = -1;
    void next.then(() => (leftAt = clock.now()));
    await clock.run(1000);
    bucket.setRate(null);
    await clock.run();
    expect(leftAt).toBeGreaterThanOrEqual(1000);
    expect(leftAt).toBeLessThanOrEqual(1250);
    expect(bucket.rate).toBeNull();
    expect(bucket.wait()).toBe(0);
  });

  test('refuses a rate that is not a positive number', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => new TokenBucket(bad)).toThrow(TypeError);
  });
});

describe('shared limits', () => {
  test('caps each link and all links together', async () => {
    const clock = new FakeClock();
    const limits = new SharedLimits(300 * KiB, 400 * KiB, clock);
    const links = [limits.link(), limits.link()];
    const sent = [0, 0];
    let stop = false;
    const run = (i: number, pacer: Pacer) =>
      (async () => {
        for (;;) {
          await pacer.take(8 * KiB);
          if (stop) return;
          sent[i]! += 8 * KiB;
        }
      })();
    const both = Promise.all(links.map((p, i) => run(i, p)));
    await clock.run(10_000);
    stop = true;
    await clock.run();
    await both;
    const total = sent[0]! + sent[1]!;
    expect(total).toBeLessThanOrEqual(10 * 400 * KiB + 200 * KiB);
    expect(total).toBeGreaterThanOrEqual(10 * 400 * KiB - 200 * KiB);
    for (const s of sent) expect(s).toBeLessThanOrEqual(10 * 300 * KiB + 100 * KiB);
  });

  test('paces in chunks of a twentieth of a second of the slowest rate', () => {
    const limits = new SharedLimits(200 * KiB, null);
    expect(limits.link().chunkBytes).toBe(10 * KiB);
    limits.set({ perMirror: null });
    expect(limits.link().limited).toBe(false);
    limits.set({ total: 100 * 1024 * KiB });
    expect(limits.link().chunkBytes).toBe(256 * KiB);
  });
});
