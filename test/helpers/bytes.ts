/** Deterministic bytes (xorshift32), so that failures reproduce. */
export function seededBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Overwrites `length` bytes every `step` bytes with fresh ones; returns a new array. */
export function scatterEdits(bytes: Uint8Array, step: number, length: number, seed: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let o = Math.floor(step / 3); o + length <= out.length; o += step)
    out.set(seededBytes(length, seed + o), o);
  return out;
}

/** Byte-for-byte equality that reports the first difference instead of a diff of megabytes. */
export function firstDifference(a: Uint8Array, b: Uint8Array): string | undefined {
  if (
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    )
  ) {
    return undefined;
  }
  if (a.length !== b.length) return `lengths differ: ${a.length} != ${b.length}`;
  let i = 0;
  while (a[i] === b[i]) i++;
  return `bytes differ first at offset ${i}`;
}
