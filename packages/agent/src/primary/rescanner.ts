import type { NodeCounters } from '../node/counters.js';
import { Pacer } from '../node/pacer.js';
import type { ChangeTracker } from './change-tracker.js';

/**
 * The share of the time a periodic rescan may take. The watcher sees every change; the rescan
 * is there for what it cannot see (a full event queue, a watch limit, a change made while
 * a folder's watch was being set up), so it need not be quick: at a tenth, a million files'
 * rescan (about 4 s of work) is spread over 40 s.
 */
export const RESCAN_DUTY = 0.1;

/**
 * Runs a full rescan every `periodMs`, paced to RESCAN_DUTY, one at a time (one still going
 * when the next is due is left to finish). Counts them, and the seconds they worked (not the
 * pauses), in `counters` for /metrics.
 */
export class Rescanner {
  readonly #timer: NodeJS.Timeout;
  readonly #stop = new AbortController();
  #running = false;

  constructor(
    readonly tracker: ChangeTracker,
    readonly counters: NodeCounters,
    periodMs: number,
    /** The share of the time, and the slice of work between pauses (see Pacer). */
    readonly pacing = { duty: RESCAN_DUTY, sliceMs: 50 },
  ) {
    this.#timer = setInterval(() => void this.runOnce(), periodMs);
    this.#timer.unref();
  }

  /** One paced rescan, unless one is running; resolves when it ends. */
  async runOnce(): Promise<void> {
    if (this.#running || this.#stop.signal.aborted) return;
    this.#running = true;
    const pacer = new Pacer(this.pacing.duty, this.#stop.signal, this.pacing.sliceMs);
    try {
      await this.tracker.scan(undefined, pacer);
    } catch {
      // stopped, or the tree went away: the next rescan looks again
    } finally {
      this.#running = false;
      this.counters.rescans++;
      this.counters.rescanSeconds += pacer.finish() / 1000;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#stop.abort();
  }
}
