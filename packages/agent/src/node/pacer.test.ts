import { describe, expect, it } from 'vitest';
import { Pacer } from './pacer.js';

/** Spins for `ms` milliseconds: work that takes the CPU. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('Pacer', () => {
  it('pauses after each slice so that work is at most its share of the time', async () => {
    const pacer = new Pacer(0.25, undefined, 20);
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      spin(5);
      await pacer.step();
    }
    const worked = pacer.finish();
    const wall = performance.now() - started;
    expect(worked).toBeGreaterThanOrEqual(100);
    // 100 ms of work at a quarter share: about 300 ms of pauses besides.
    expect(wall).toBeGreaterThanOrEqual(worked / 0.25 - 40);
  });

  it('never pauses at a full share', async () => {
    const pacer = new Pacer(1, undefined, 1);
    const started = performance.now();
    for (let i = 0; i < 10; i++) {
      spin(2);
      await pacer.step();
    }
    expect(performance.now() - started).toBeLessThan(200);
    expect(pacer.finish()).toBeGreaterThanOrEqual(20);
  });

  it('throws from step once aborted, even in a pause', async () => {
    const stop = new AbortController();
    const pacer = new Pacer(0.01, stop.signal, 1);
    spin(5);
    const pausing = pacer.step();
    stop.abort();
    await expect(pausing).rejects.toThrow();
    await expect(pacer.step()).rejects.toThrow();
  });
});
