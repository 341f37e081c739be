/*
 * When the tracker is idle, and when it has settled.
 *
 * States: idle (no batch running, nothing marked), running (a batch runs, or marked paths wait
 * for one), and, beside either, looks scheduled for later (second looks, retries). `begin`
 * moves idle to running, `end` running to idle. Idle with no look scheduled is settled.
 * `idle()` resolves at the next `end` (at once when idle); `settled()` at the first moment the
 * tracker is settled: after an `end` or a scheduled look, whichever leaves it so.
 */
export class TrackerIdle {
  #running = false;
  #idleWaiters: (() => void)[] = [];
  #batchWaiters: (() => void)[] = [];
  #settleWaiters: (() => void)[] = [];
  /** Looks scheduled and not yet due. Unref'd, unless someone waits for them (see settled). */
  readonly #later = new Set<NodeJS.Timeout>();

  get running(): boolean {
    return this.#running;
  }

  /** Marks the tracker running; true when it was idle (the caller then starts a run). */
  begin(): boolean {
    if (this.#running) return false;
    this.#running = true;
    return true;
  }

  /** Marks the tracker idle, at the end of a run. */
  end(): void {
    this.#running = false;
    this.batchDone();
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
    this.#checkSettled();
  }

  /** Says a batch is done (the run goes on while paths are marked); see `nextBatch`. */
  batchDone(): void {
    const waiters = this.#batchWaiters;
    this.#batchWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when the running batch is done, or the run ends (at once when idle). */
  nextBatch(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#batchWaiters.push(resolve));
  }

  /** Resolves once no batch is running and nothing is marked. */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Resolves once nothing is running, marked, or scheduled for a later look. */
  settled(): Promise<void> {
    if (this.#isSettled()) return Promise.resolve();
    // A caller waiting for the looks keeps the process alive until they are done.
    for (const t of this.#later) t.ref();
    return new Promise((resolve) => this.#settleWaiters.push(resolve));
  }

  /** Runs `look` after `ms`; `settled()` waits for it. */
  after(ms: number, look: () => void): void {
    const t = setTimeout(() => {
      this.#later.delete(t);
      try {
        look();
      } finally {
        this.#checkSettled();
      }
    }, ms);
    if (this.#settleWaiters.length === 0) t.unref();
    this.#later.add(t);
  }

  #isSettled(): boolean {
    return !this.#running && this.#later.size === 0;
  }

  #checkSettled(): void {
    if (!this.#isSettled() || this.#settleWaiters.length === 0) return;
    const waiters = this.#settleWaiters;
    this.#settleWaiters = [];
    for (const w of waiters) w();
  }
}
