import { readSync } from 'node:fs';
import { DeltaError } from './errors.js';
import { IO_CHUNK, writeAllSync, yieldToLoop } from './file-io.js';
import { createHasher, type StreamHasher } from './hash.js';

/** Bytes written between two turns of the event loop. */
const BYTES_PER_TURN = 8 * 1024 * 1024;

/**
 * Builds a patched file through one IO_CHUNK staging buffer: copies are read from the basis
 * straight into it, literals are copied in, and each full buffer is hashed and written.
 * The I/O is synchronous in small pieces (cheaper here than a thread-pool hop per piece), with
 * a turn of the event loop every few MiB.
 */
export class PatchWriter {
  readonly #out: number;
  readonly #basis: number | null;
  readonly #stage = Buffer.allocUnsafe(IO_CHUNK);
  readonly #hasher: StreamHasher = createHasher();
  #fill = 0;
  #sinceTurn = 0;
  written = 0;

  readonly #onWritten: ((bytes: number) => void) | undefined;

  /** `onWritten` hears of every piece handed to the kernel (to start write-back early, say). */
  constructor(
    out: { readonly fd: number },
    basis: { readonly fd: number } | null,
    onWritten?: (bytes: number) => void,
  ) {
    this.#out = out.fd;
    this.#basis = basis ? basis.fd : null;
    this.#onWritten = onWritten;
  }

  async copy(offset: number, length: number): Promise<void> {
    const basis = this.#basis;
    if (basis === null)
      throw new DeltaError('ERR_BASIS_MISMATCH', 'delta copies from a basis but none was given');
    let pos = offset;
    let left = length;
    while (left > 0) {
      const n = Math.min(left, IO_CHUNK - this.#fill);
      const got = readSync(basis, this.#stage, this.#fill, n, pos);
      if (got === 0) {
        throw new DeltaError(
          'ERR_BASIS_MISMATCH',
          `basis ended at byte ${pos} while the delta copies up to ${offset + length}`,
        );
      }
      this.#fill += got;
      pos += got;
      left -= got;
      this.written += got;
      if (this.#fill === IO_CHUNK) await this.#emit();
    }
  }

  async literal(bytes: Uint8Array): Promise<void> {
    this.written += bytes.length;
    let o = 0;
    while (o < bytes.length) {
      const n = Math.min(bytes.length - o, IO_CHUNK - this.#fill);
      this.#stage.set(bytes.subarray(o, o + n), this.#fill);
      this.#fill += n;
      o += n;
      if (this.#fill === IO_CHUNK) await this.#emit();
    }
  }

  async #emit(): Promise<void> {
    const data = this.#stage.subarray(0, this.#fill);
    this.#hasher.update(data);
    writeAllSync(this.#out, data);
    this.#onWritten?.(data.length);
    this.#sinceTurn += this.#fill;
    this.#fill = 0;
    if (this.#sinceTurn >= BYTES_PER_TURN) {
      this.#sinceTurn = 0;
      await yieldToLoop();
    }
  }

  /** Writes everything staged. */
  async flush(): Promise<void> {
    if (this.#fill > 0) await this.#emit();
  }

  hash(): bigint {
    return this.#hasher.digest();
  }
}
