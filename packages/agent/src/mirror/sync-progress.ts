/**
 * How far an initial sync, a reconcile or a long catch-up has come, as rsync's
 * `--info=progress2` shows it: files and content bytes done of how many, the rate, and an ETA.
 */
export type SyncPhase = 'initial' | 'reconcile' | 'catch-up';

export interface ProgressView {
  phase: SyncPhase;
  files: number;
  filesTotal: number;
  /** Content bytes of the files done (not wire bytes: a delta moves fewer). */
  bytes: number;
  /** 0 when not known (a catch-up by journal: the primary says how many ops, not their size). */
  bytesTotal: number;
  rateBytesPerSec: number;
  etaSeconds: number | null;
}

/** A catch-up shorter than this many ops is not worth a progress line. */
const CATCH_UP_MIN_OPS = 1000;

export class SyncProgress {
  #phase: SyncPhase = 'initial';
  #files = 0;
  #filesTotal = 0;
  #bytes = 0;
  #bytesTotal = 0;
  #startedAt = 0;
  #active = false;
  /** For a catch-up by journal: the seq it ends at. */
  #untilSeq = 0;
  #fromSeq = 0;

  /** A reconcile by manifest needs `files` paths of `bytes` content in all. */
  plan(phase: 'initial' | 'reconcile', files: number, bytes: number, now = Date.now()): void {
    this.#start(phase, now);
    this.#filesTotal = files;
    this.#bytesTotal = bytes;
  }

  /** A replay of the journal from `fromSeq` to `untilSeq` (shown only when it is long). */
  catchUp(fresh: boolean, fromSeq: number, untilSeq: number, now = Date.now()): void {
    this.#active = false;
    if (untilSeq - fromSeq < CATCH_UP_MIN_OPS) return;
    this.#start(fresh ? 'initial' : 'catch-up', now);
    this.#fromSeq = fromSeq;
    this.#untilSeq = untilSeq;
    this.#filesTotal = untilSeq - fromSeq;
  }

  /** One path (or op) done, of `bytes` content. */
  done(bytes: number): void {
    if (!this.#active) return;
    this.#files++;
    this.#bytes += bytes;
  }

  /** During a catch-up: ops up to `seq` applied (it ends at its last one). */
  applied(seq: number): void {
    if (!this.#active || this.#untilSeq === 0) return;
    this.#files = Math.min(this.#filesTotal, seq - this.#fromSeq);
    if (seq >= this.#untilSeq) this.#active = false;
  }

  end(): void {
    this.#active = false;
  }

  view(now = Date.now()): ProgressView | null {
    if (!this.#active) return null;
    const elapsed = Math.max(0.001, (now - this.#startedAt) / 1000);
    const rate = this.#bytes / elapsed;
    let eta: number | null = null;
    if (this.#bytesTotal > 0 && rate > 0) eta = Math.max(0, (this.#bytesTotal - this.#bytes) / rate);
    else if (this.#files > 0) eta = ((this.#filesTotal - this.#files) * elapsed) / this.#files;
    return {
      phase: this.#phase,
      files: this.#files,
      filesTotal: this.#filesTotal,
      bytes: this.#bytes,
      bytesTotal: this.#bytesTotal,
      rateBytesPerSec: Math.round(rate),
      etaSeconds: eta === null ? null : Math.round(eta * 10) / 10,
    };
  }

  #start(phase: SyncPhase, now: number): void {
    this.#phase = phase;
    this.#files = 0;
    this.#bytes = 0;
    this.#bytesTotal = 0;
    this.#untilSeq = 0;
    this.#fromSeq = 0;
    this.#startedAt = now;
    this.#active = true;
  }
}
