/**
 * The rolling weak checksum: rsync's two running sums, kept to 32 bits each instead of 16,
 *   a = Σ x[i],  b = Σ (L - i)·x[i]   over a window of L bytes,
 * and folded into one 32-bit key by `weakKey`. Rolling the window one byte costs a few
 * integer operations; see `rollA`/`rollB` in the matcher, which inlines them.
 */

/** Sums of bytes[start, end): returns [a, b] as int32. */
export function weakSums(bytes: Uint8Array, start: number, end: number): [number, number] {
  let a = 0;
  let b = 0;
  let i = start;
  // Four bytes a step: b gains a four times plus the bytes weighted 4, 3, 2, 1.
  for (const stop = end - 3; i < stop; i += 4) {
    const x0 = bytes[i]!;
    const x1 = bytes[i + 1]!;
    const x2 = bytes[i + 2]!;
    const x3 = bytes[i + 3]!;
    b = (b + 4 * a + 4 * x0 + 3 * x1 + 2 * x2 + x3) | 0;
    a = (a + x0 + x1 + x2 + x3) | 0;
  }
  for (; i < end; i++) {
    a = (a + bytes[i]!) | 0;
    b = (b + a) | 0;
  }
  return [a, b];
}

/** Folds the two sums into the 32-bit key stored in signatures. */
export function weakKey(a: number, b: number): number {
  return (a ^ Math.imul(b, 0x9e3779b1)) >>> 0;
}

/** Weak key of bytes[start, end). */
export function weakChecksum(bytes: Uint8Array, start: number, end: number): number {
  const [a, b] = weakSums(bytes, start, end);
  return weakKey(a, b);
}
