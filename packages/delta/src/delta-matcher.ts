import { createHasher, type StreamHasher, strongHash } from './hash.js';
import type { Signature } from './signature.js';
import { bucketOf, buildIndex, type SignatureIndex } from './signature-index.js';
import { weakKey, weakSums } from './weak-checksum.js';

/** Receives the delta as copy and literal commands, in target order. */
export interface DeltaSink {
  copy(offset: number, length: number): void;
  /** `bytes` is only valid during the call. */
  literal(bytes: Uint8Array): void;
}

export interface TargetSummary {
  readonly targetLength: number;
  readonly targetHash: bigint;
}

/** Most weak-key candidates examined at one position (repetitive data cannot make it quadratic). */
const MAX_PROBES = 32;
/** Longest literal run kept before it is handed to the sink. */
export const MAX_LITERAL = 256 * 1024;
const MIN_BUFFER = 1024 * 1024;

/**
 * The delta search, fed the target in chunks of any size.
 *
 * At each position it first tries the block that would follow the last match (aligned data,
 * one strong hash per block, no rolling); only where that fails does it roll the weak
 * checksum byte by byte and probe the index. Memory is bounded: the buffer holds at most one
 * pending literal run, one block and the latest chunk.
 */
export class DeltaMatcher {
  readonly #sig: Signature;
  readonly #index: SignatureIndex;
  readonly #sink: DeltaSink;
  readonly #hasher: StreamHasher = createHasher();
  #buf: Uint8Array;
  #end = 0;
  /** Absolute target offset of #buf[0]. */
  #base = 0;
  #p = 0;
  #litStart = 0;
  #expected = 0;
  #a = 0;
  #b = 0;
  /** Buffer index at which (#a, #b) hold the window's sums, or -1. */
  #rollAt = -1;
  #copyOffset = 0;
  #copyLength = 0;
  #finished = false;

  constructor(sig: Signature, sink: DeltaSink) {
    this.#sig = sig;
    this.#index = buildIndex(sig);
    this.#sink = sink;
    this.#buf = new Uint8Array(Math.max(MIN_BUFFER, 2 * sig.blockSize + MAX_LITERAL));
  }

  push(chunk: Uint8Array): void {
    if (this.#finished) throw new Error('DeltaMatcher: push after finish');
    this.#hasher.update(chunk);
    let i = 0;
    while (i < chunk.length) {
      if (this.#end === this.#buf.length) this.#compact();
      const n = Math.min(chunk.length - i, this.#buf.length - this.#end);
      this.#buf.set(chunk.subarray(i, i + n), this.#end);
      this.#end += n;
      i += n;
      this.#scan();
    }
  }

  /**
   * Hands the copy run in progress to the sink now instead of extending it further, so that a
   * receiver can start on it. Costs one extra copy command.
   */
  flushCopy(): void {
    this.#flushCopy();
  }

  finish(): TargetSummary {
    if (this.#finished) throw new Error('DeltaMatcher: finish called twice');
    this.#finished = true;
    this.#scanTail();
    this.#flushLiteral(this.#end);
    this.#flushCopy();
    return { targetLength: this.#base + this.#end, targetHash: this.#hasher.digest() };
  }

  #scan(): void {
    const buf = this.#buf;
    const end = this.#end;
    const L = this.#sig.blockSize;
    const { weak, strong } = this.#sig;
    const { heads, next, mask, fullBlocks, tailLength } = this.#index;
    let p = this.#p;
    let a = this.#a;
    let b = this.#b;
    let rollAt = this.#rollAt;
    while (p + L <= end) {
      const e = this.#expected;
      if (e >= 0) {
        const len = e < fullBlocks ? L : e === fullBlocks ? tailLength : 0;
        if (len > 0 && strongHash(buf.subarray(p, p + len)) === strong[e]) {
          this.#match(e, p, len);
          p += len;
          this.#expected = e + 1;
          rollAt = -1;
          continue;
        }
        this.#expected = -1;
      }
      if (rollAt >= 0 && rollAt === p - 1) {
        const out = buf[p - 1]!;
        a = (a - out + buf[p - 1 + L]!) | 0;
        b = (b - Math.imul(L, out) + a) | 0;
      } else if (rollAt !== p) {
        [a, b] = weakSums(buf, p, p + L);
      }
      rollAt = p;
      const key = weakKey(a, b);
      let found = -1;
      let probes = 0;
      let h = -1n;
      for (let c = heads[bucketOf(key, mask)]!; c >= 0 && probes < MAX_PROBES; c = next[c]!, probes++) {
        if (weak[c] !== key) continue;
        if (h < 0n) h = strongHash(buf.subarray(p, p + L));
        if (h === strong[c]) {
          found = c;
          break;
        }
      }
      if (found >= 0) {
        this.#match(found, p, L);
        p += L;
        this.#expected = found + 1;
        rollAt = -1;
        continue;
      }
      p++;
      if (p - this.#litStart >= MAX_LITERAL) this.#flushLiteral(p);
    }
    this.#p = p;
    this.#a = a;
    this.#b = b;
    this.#rollAt = rollAt;
  }

  /** The last bytes, shorter than a block: they can only match the basis's short tail block. */
  #scanTail(): void {
    const { fullBlocks, tailLength } = this.#index;
    const p = this.#p;
    const remaining = this.#end - p;
    if (tailLength === 0 || remaining < tailLength) return;
    const tailHash = this.#sig.strong[fullBlocks]!;
    if (this.#expected === fullBlocks && strongHash(this.#buf.subarray(p, p + tailLength)) === tailHash) {
      this.#match(fullBlocks, p, tailLength);
      this.#p = p + tailLength;
      return;
    }
    const at = this.#end - tailLength;
    if (strongHash(this.#buf.subarray(at, this.#end)) === tailHash) {
      this.#match(fullBlocks, at, tailLength);
      this.#p = this.#end;
    }
  }

  #match(block: number, p: number, length: number): void {
    this.#flushLiteral(p);
    this.#litStart = p + length;
    const offset = block * this.#sig.blockSize;
    if (this.#copyLength > 0 && this.#copyOffset + this.#copyLength === offset) {
      this.#copyLength += length;
    } else {
      this.#flushCopy();
      this.#copyOffset = offset;
      this.#copyLength = length;
    }
  }

  #flushCopy(): void {
    if (this.#copyLength === 0) return;
    this.#sink.copy(this.#copyOffset, this.#copyLength);
    this.#copyLength = 0;
  }

  #flushLiteral(upTo: number): void {
    if (upTo <= this.#litStart) return;
    this.#flushCopy();
    this.#sink.literal(this.#buf.subarray(this.#litStart, upTo));
    this.#litStart = upTo;
  }

  /** Drops consumed bytes from the front of the buffer, keeping the byte the roll needs. */
  #compact(): void {
    const keep = Math.max(0, Math.min(this.#litStart, this.#p - 1));
    if (keep === 0) {
      // Unreachable while MAX_LITERAL bounds literal runs; grow rather than spin if it ever is.
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf.subarray(0, this.#end));
      this.#buf = bigger;
      return;
    }
    this.#buf.copyWithin(0, keep, this.#end);
    this.#end -= keep;
    this.#p -= keep;
    this.#litStart -= keep;
    if (this.#rollAt >= 0) this.#rollAt -= keep;
    this.#base += keep;
  }
}
