/**
 * A one-line progress bar for the initial sync, redrawn at most every 100 ms, only when
 * stdout is a terminal (logs go to stderr and stay machine-readable).
 */
export class ProgressBar {
  readonly #out: NodeJS.WriteStream;
  #last = 0;
  #shown = false;

  constructor(out: NodeJS.WriteStream = process.stdout) {
    this.#out = out;
  }

  get enabled(): boolean {
    return this.#out.isTTY === true;
  }

  update(done: number, total: number): void {
    if (!this.enabled || total === 0) return;
    const now = Date.now();
    if (done < total && now - this.#last < 100) return;
    this.#last = now;
    const width = Math.max(10, Math.min(40, (this.#out.columns ?? 80) - 40));
    const filled = Math.round((done / total) * width);
    const pct = Math.floor((done / total) * 100);
    this.#out.write(
      `\rinitial sync [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${done}/${total} files`,
    );
    this.#shown = true;
    if (done >= total) this.end();
  }

  end(): void {
    if (!this.#shown) return;
    this.#out.write('\n');
    this.#shown = false;
  }
}
