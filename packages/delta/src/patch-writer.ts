import type { FileHandle } from 'node:fs/promises';
import { DeltaError } from './errors.js';
import { writeAll } from './file-io.js';
import { createHasher, type StreamHasher } from './hash.js';

const STAGE_BYTES = 1024 * 1024;

/**
 * Builds a patched file through two 1 MiB staging buffers: copies are read from the basis
 * straight into one while the other is being written; literals are copied in; each full
 * buffer is hashed and handed to the kernel.
 */
export class PatchWriter {
  readonly #out: FileHandle;
  readonly #basis: FileHandle | null;
  readonly #stages = [Buffer.allocUnsafe(STAGE_BYTES), Buffer.allocUnsafe(STAGE_BYTES)];
  #stage = this.#stages[0]!;
  #writing: Promise<void> = Promise.resolve();
  readonly #hasher: StreamHasher = createHasher();
  #fill = 0;
  written = 0;

  constructor(out: FileHandle, basis: FileHandle | null) {
    this.#out = out;
    this.#basis = basis;
  }

  async copy(offset: number, length: number): Promise<void> {
    const basis = this.#basis;
    if (!basis) throw new DeltaError('ERR_BASIS_MISMATCH', 'delta copies from a basis but none was given');
    let pos = offset;
    let left = length;
    while (left > 0) {
      const n = Math.min(left, STAGE_BYTES - this.#fill);
      const { bytesRead } = await basis.read(this.#stage, this.#fill, n, pos);
      if (bytesRead === 0) {
        throw new DeltaError(
          'ERR_BASIS_MISMATCH',
          `basis ended at byte ${pos} while the delta copies up to ${offset + length}`,
        );
      }
      this.#fill += bytesRead;
      pos += bytesRead;
      left -= bytesRead;
      this.written += bytesRead;
      if (this.#fill === STAGE_BYTES) await this.#rotate();
    }
  }

  async literal(bytes: Uint8Array): Promise<void> {
    this.written += bytes.length;
    if (bytes.length >= STAGE_BYTES) {
      await this.flush();
      this.#hasher.update(bytes);
      await writeAll(this.#out, bytes);
      return;
    }
    let o = 0;
    while (o < bytes.length) {
      const n = Math.min(bytes.length - o, STAGE_BYTES - this.#fill);
      this.#stage.set(bytes.subarray(o, o + n), this.#fill);
      this.#fill += n;
      o += n;
      if (this.#fill === STAGE_BYTES) await this.#rotate();
    }
  }

  /** Starts writing the current stage and switches to the other one once it is free. */
  async #rotate(): Promise<void> {
    const data = this.#stage.subarray(0, this.#fill);
    this.#hasher.update(data);
    const previous = this.#writing;
    this.#writing = previous.then(() => writeAll(this.#out, data));
    // Failures surface through the awaits below; this only keeps them from counting as unhandled.
    this.#writing.catch(() => {});
    this.#stage = this.#stage === this.#stages[0] ? this.#stages[1]! : this.#stages[0]!;
    this.#fill = 0;
    await previous;
  }

  /** Writes everything staged; resolves once the kernel has it all. */
  async flush(): Promise<void> {
    if (this.#fill > 0) await this.#rotate();
    await this.#writing;
  }

  hash(): bigint {
    return this.#hasher.digest();
  }
}
