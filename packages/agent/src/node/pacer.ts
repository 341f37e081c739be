import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Keeps a long background job (a periodic full rescan) to at most `duty` of the time: it works
 * in slices of about `sliceMs` and, after each, pauses for as long as the slice took times
 * (1 - duty) / duty. At 0.1 a rescan of a million files that needs 4 s of work takes 40 s and
 * never more than a tenth of a core; events keep flowing in between. `busyMs` is what it worked.
 */
export class Pacer {
  busyMs = 0;
  #sliceStart = performance.now();

  constructor(
    readonly duty: number,
    readonly signal?: AbortSignal,
    readonly sliceMs = 50,
  ) {}

  /** Called between units of work: pauses once the current slice is used up; throws once aborted. */
  async step(): Promise<void> {
    this.signal?.throwIfAborted();
    const worked = performance.now() - this.#sliceStart;
    if (worked < this.sliceMs || this.duty >= 1) return;
    this.busyMs += worked;
    await sleep((worked * (1 - this.duty)) / this.duty, undefined, { signal: this.signal });
    this.#sliceStart = performance.now();
  }

  /** Ends the job; returns the milliseconds it worked in all. */
  finish(): number {
    this.busyMs += performance.now() - this.#sliceStart;
    this.#sliceStart = performance.now();
    return this.busyMs;
  }
}
