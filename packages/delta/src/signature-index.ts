import type { Signature } from './signature.js';

/**
 * A hash table from weak key to the full blocks of a signature, built for the matcher.
 * Blocks whose weak key and strong hash both equal an earlier block's are left out, so a
 * basis of zeros or of a repeated pattern indexes one block, not thousands: probing stays
 * bounded however repetitive the data is.
 */
export interface SignatureIndex {
  readonly heads: Int32Array;
  readonly next: Int32Array;
  readonly mask: number;
  /** Blocks of exactly `blockSize` bytes; the block after them, if any, is the short tail. */
  readonly fullBlocks: number;
  readonly tailLength: number;
}

export function bucketOf(key: number, mask: number): number {
  return (key ^ (key >>> 15)) & mask;
}

export function buildIndex(sig: Signature): SignatureIndex {
  const fullBlocks = Math.floor(sig.fileLength / sig.blockSize);
  const tailLength = sig.fileLength - fullBlocks * sig.blockSize;
  let size = 16;
  while (size < fullBlocks * 2) size *= 2;
  const mask = size - 1;
  const heads = new Int32Array(size).fill(-1);
  const next = new Int32Array(Math.max(1, fullBlocks)).fill(-1);
  const tails = new Int32Array(size).fill(-1);
  const { weak, strong } = sig;
  for (let i = 0; i < fullBlocks; i++) {
    const bucket = bucketOf(weak[i]!, mask);
    let dup = false;
    for (let c = heads[bucket]!; c >= 0; c = next[c]!) {
      if (weak[c] === weak[i] && strong[c] === strong[i]) {
        dup = true;
        break;
      }
    }
    if (dup) continue;
    // Append at the chain's end so that lower block numbers are tried first.
    const last = tails[bucket]!;
    if (last < 0) heads[bucket] = i;
    else next[last] = i;
    tails[bucket] = i;
  }
  return { heads, next, mask, fullBlocks, tailLength };
}
