import { checkBlockSize, defaultBlockSize } from './block-size.js';
import { createHasher, type StreamHasher, strongHash } from './hash.js';
import { weakChecksum } from './weak-checksum.js';

/**
 * A signature describes a basis file block by block: for each block a weak rolling key and
 * an xxh64 strong hash, plus the whole file's length and xxh64. The last block may be short.
 */
export interface Signature {
  readonly blockSize: number;
  readonly fileLength: number;
  readonly fileHash: bigint;
  readonly weak: Uint32Array;
  readonly strong: BigUint64Array;
}

export interface SignatureOptions {
  /** Block size in bytes; by default chosen from the basis length (rsync's square-root rule). */
  blockSize?: number;
}

export function blockCount(fileLength: number, blockSize: number): number {
  return Math.ceil(fileLength / blockSize);
}

/**
 * Builds a signature from chunks of any size. The length must be known up front (it sets the
 * default block size and the table sizes); `finish` checks it was honoured.
 */
export class SignatureBuilder {
  readonly blockSize: number;
  readonly #expectedLength: number;
  readonly #weak: Uint32Array;
  readonly #strong: BigUint64Array;
  readonly #hasher: StreamHasher = createHasher();
  readonly #carry: Uint8Array;
  #carryLength = 0;
  #blocks = 0;
  #length = 0;

  constructor(fileLength: number, options: SignatureOptions = {}) {
    this.blockSize = checkBlockSize(options.blockSize ?? defaultBlockSize(fileLength));
    this.#expectedLength = fileLength;
    const count = blockCount(fileLength, this.blockSize);
    this.#weak = new Uint32Array(count);
    this.#strong = new BigUint64Array(count);
    this.#carry = new Uint8Array(this.blockSize);
  }

  update(chunk: Uint8Array): void {
    this.#length += chunk.length;
    if (this.#length > this.#expectedLength) {
      throw new RangeError(`basis grew while being read: more than ${this.#expectedLength} bytes`);
    }
    this.#hasher.update(chunk);
    const size = this.blockSize;
    let i = 0;
    if (this.#carryLength > 0) {
      const take = Math.min(size - this.#carryLength, chunk.length);
      this.#carry.set(chunk.subarray(0, take), this.#carryLength);
      this.#carryLength += take;
      i = take;
      if (this.#carryLength === size) {
        this.#addBlock(this.#carry, 0, size);
        this.#carryLength = 0;
      }
    }
    for (; i + size <= chunk.length; i += size) this.#addBlock(chunk, i, i + size);
    if (i < chunk.length) {
      this.#carry.set(chunk.subarray(i), 0);
      this.#carryLength = chunk.length - i;
    }
  }

  finish(): Signature {
    if (this.#carryLength > 0) {
      this.#addBlock(this.#carry, 0, this.#carryLength);
      this.#carryLength = 0;
    }
    if (this.#length !== this.#expectedLength) {
      throw new RangeError(
        `basis length changed while being read: ${this.#length} != ${this.#expectedLength}`,
      );
    }
    return {
      blockSize: this.blockSize,
      fileLength: this.#length,
      fileHash: this.#hasher.digest(),
      weak: this.#weak,
      strong: this.#strong,
    };
  }

  #addBlock(bytes: Uint8Array, start: number, end: number): void {
    this.#weak[this.#blocks] = weakChecksum(bytes, start, end);
    this.#strong[this.#blocks] = strongHash(bytes.subarray(start, end));
    this.#blocks++;
  }
}

/** Signature of a basis held in memory. */
export function signature(basis: Uint8Array, options?: SignatureOptions): Signature {
  const builder = new SignatureBuilder(basis.length, options);
  builder.update(basis);
  return builder.finish();
}
