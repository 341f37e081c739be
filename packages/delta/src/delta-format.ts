import { ByteQueue } from './byte-queue.js';
import type { DeltaSink, TargetSummary } from './delta-matcher.js';

/**
 * Delta formats and their encoders.
 *
 * mimic delta, big-endian:
 *   magic "MIMD" | version u8 (1) | reserved 3 bytes (0) | basis length u64 | basis xxh64 u64
 *   commands: 0x01 copy: offset u64, length u32
 *             0x02 literal: length u32, then the bytes
 *             0x00 end: target length u64, target xxh64 u64 (nothing may follow)
 * The target's length and hash come last so that a delta can be streamed as it is made.
 *
 * librsync delta (what `rdiff delta` writes and `rdiff patch` reads):
 *   magic 0x72730236, then commands: 0x00 end; 0x01-0x40 literal of that many bytes;
 *   0x41-0x44 literal with a 1/2/4/8-byte length; 0x45-0x54 copy, offset and length each
 *   1/2/4/8 bytes (0x45 + 4·log2(offset bytes) + log2(length bytes)). No hashes.
 */
export const MIMIC_DELTA_MAGIC = 0x4d494d44;
export const MIMIC_DELTA_VERSION = 1;
export const LIBRSYNC_DELTA_MAGIC = 0x72730236;
export const MIMIC_HEADER_BYTES = 24;

export type DeltaFormat = 'mimic' | 'librsync';

export const OP_END = 0x00;
export const OP_COPY = 0x01;
export const OP_LITERAL = 0x02;
const MAX_U32 = 0xffffffff;

export interface BasisInfo {
  readonly length: number;
  readonly hash: bigint;
}

/** A DeltaSink that writes one of the formats into a ByteQueue. */
export interface DeltaEncoder extends DeltaSink {
  readonly out: ByteQueue;
  end(summary: TargetSummary): void;
}

export function createEncoder(format: DeltaFormat, basis: BasisInfo): DeltaEncoder {
  return format === 'librsync' ? new LibrsyncEncoder() : new MimicEncoder(basis);
}

class MimicEncoder implements DeltaEncoder {
  readonly out = new ByteQueue();

  constructor(basis: BasisInfo) {
    this.out.uint(MIMIC_DELTA_MAGIC, 4);
    this.out.u8(MIMIC_DELTA_VERSION);
    this.out.uint(0, 2);
    this.out.u8(0);
    this.out.uint(basis.length, 8);
    this.out.u64(basis.hash);
  }

  copy(offset: number, length: number): void {
    for (let done = 0; done < length; ) {
      const n = Math.min(MAX_U32, length - done);
      this.out.u8(OP_COPY);
      this.out.uint(offset + done, 8);
      this.out.uint(n, 4);
      done += n;
    }
  }

  literal(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length; ) {
      const n = Math.min(MAX_U32, bytes.length - done);
      this.out.u8(OP_LITERAL);
      this.out.uint(n, 4);
      this.out.bytes(bytes.subarray(done, done + n));
      done += n;
    }
  }

  end(summary: TargetSummary): void {
    this.out.u8(OP_END);
    this.out.uint(summary.targetLength, 8);
    this.out.u64(summary.targetHash);
  }
}

/** Smallest of 1, 2, 4, 8 bytes that holds `v`, as a power of two exponent 0..3. */
function widthLog(v: number): 0 | 1 | 2 | 3 {
  if (v <= 0xff) return 0;
  if (v <= 0xffff) return 1;
  if (v <= MAX_U32) return 2;
  return 3;
}

const WIDTHS = [1, 2, 4, 8] as const;

class LibrsyncEncoder implements DeltaEncoder {
  readonly out = new ByteQueue();

  constructor() {
    this.out.uint(LIBRSYNC_DELTA_MAGIC, 4);
  }

  copy(offset: number, length: number): void {
    const wo = widthLog(offset);
    const wl = widthLog(length);
    this.out.u8(0x45 + wo * 4 + wl);
    this.out.uint(offset, WIDTHS[wo]);
    this.out.uint(length, WIDTHS[wl]);
  }

  literal(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (bytes.length <= 64) {
      this.out.u8(bytes.length);
    } else {
      const wl = widthLog(bytes.length);
      this.out.u8(0x41 + wl);
      this.out.uint(bytes.length, WIDTHS[wl]);
    }
    this.out.bytes(bytes);
  }

  end(): void {
    this.out.u8(OP_END);
  }
}
