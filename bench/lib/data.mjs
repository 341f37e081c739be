// Deterministic test data: random files, the W1 edit, the pathological file.
// Bytes come from AES-256-CTR over zeros (fast, seeded); positions and sizes from a seeded PRNG.
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';

export const KiB = 1024;
export const MiB = 1024 * KiB;
const CHUNK = 16 * MiB;
const ZEROS = Buffer.alloc(CHUNK);

/** mulberry32: a small seeded PRNG; enough for offsets, sizes and picks. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = next() || Number.MIN_VALUE;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  /** Integer in [0, n). */
  const int = (n) => Math.floor(next() * n);
  /** k distinct indices out of [0, n), in random order. */
  const pick = (n, k) => {
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < Math.min(k, n); i++) {
      const j = i + int(n - i);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx.slice(0, Math.min(k, n));
  };
  return { next, normal, int, pick };
}

/** A seeded stream of random bytes: take(n) returns the next n bytes. */
export function byteStream(seed) {
  const key = createHash('sha256').update(`mimic-bench/${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return {
    take(n) {
      if (n <= CHUNK) return cipher.update(ZEROS.subarray(0, n));
      const parts = [];
      for (let left = n; left > 0; left -= CHUNK)
        parts.push(cipher.update(ZEROS.subarray(0, Math.min(left, CHUNK))));
      return Buffer.concat(parts, n);
    },
  };
}

/** Write `size` deterministic random bytes to `path`, 16 MiB at a time. */
export function writeRandomFile(path, size, seed) {
  const bytes = byteStream(seed);
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0; left -= CHUNK) writeSync(fd, bytes.take(Math.min(left, CHUNK)));
  } finally {
    closeSync(fd);
  }
}

/**
 * The W1 edit of a file of `size` bytes: 64 scattered 4 KiB overwrites, one 1,000-byte insertion,
 * one 500-byte deletion. Offsets are in the original file's coordinates.
 */
export function planW1Edit(size, seed = 1) {
  const r = rng(seed);
  const bytes = byteStream(`w1-edit-${seed}`);
  const overwrites = [];
  for (let i = 0; i < 64; i++) overwrites.push({ offset: r.int(size - 4 * KiB), data: bytes.take(4 * KiB) });
  overwrites.sort((a, b) => a.offset - b.offset);
  const deleteAt = r.int(size - 500);
  let insertAt;
  do insertAt = r.int(size);
  while (insertAt >= deleteAt && insertAt < deleteAt + 500);
  return { size, overwrites, insertAt, insert: bytes.take(1000), deleteAt, deleteLength: 500 };
}

/** Copy `src` to `dst` with the W1 edit applied, streaming in 16 MiB pieces. Returns the new size. */
export function applyW1Edit(src, dst, size, seed = 1) {
  const plan = planW1Edit(size, seed);
  const { insertAt: ins, deleteAt: del } = plan;
  const delEnd = del + plan.deleteLength;
  const pieces =
    ins < del
      ? [[0, ins], plan.insert, [ins, del], [delEnd, size]]
      : [[0, del], [delEnd, ins], plan.insert, [ins, size]];
  const inFd = openSync(src, 'r');
  const outFd = openSync(dst, 'w');
  const buf = Buffer.allocUnsafe(CHUNK);
  let written = 0;
  try {
    for (const piece of pieces) {
      if (Buffer.isBuffer(piece)) {
        written += writeSync(outFd, piece);
        continue;
      }
      for (let pos = piece[0]; pos < piece[1]; ) {
        const len = readSync(inFd, buf, 0, Math.min(CHUNK, piece[1] - pos), pos);
        if (len <= 0) throw new Error(`short read of ${src} at ${pos}`);
        overlay(buf, pos, len, plan.overwrites);
        written += writeSync(outFd, buf, 0, len);
        pos += len;
      }
    }
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
  return written;
}

/** Copy into buf (holding file bytes [pos, pos+len)) the parts of the overwrites that fall inside. */
function overlay(buf, pos, len, overwrites) {
  for (const { offset, data } of overwrites) {
    const from = Math.max(offset, pos);
    const to = Math.min(offset + data.length, pos + len);
    if (from < to) data.copy(buf, from - pos, from - offset, to - offset);
  }
}

/**
 * The pathological pair: 32 MiB of zeros then a repeated 1 KiB pattern up to `size`, and a copy
 * with ten small overwrites (five in each half) and one 100-byte insertion in the pattern half.
 */
export function writePathological(basisPath, newPath, size = 64 * MiB, seed = 3) {
  const half = Math.floor(size / 2);
  const basis = Buffer.alloc(size);
  const pattern = byteStream(`pattern-${seed}`).take(KiB);
  for (let p = half; p < size; p += KiB) pattern.copy(basis, p, 0, Math.min(KiB, size - p));
  writeFileSync(basisPath, basis);
  const r = rng(seed);
  const bytes = byteStream(`pathological-edit-${seed}`);
  const edited = Buffer.from(basis);
  for (let i = 0; i < 10; i++) {
    const base = i < 5 ? 0 : half;
    const len = 8 + r.int(57);
    bytes.take(len).copy(edited, base + r.int(half - len));
  }
  const at = half + r.int(half);
  writeFileSync(newPath, Buffer.concat([edited.subarray(0, at), bytes.take(100), edited.subarray(at)]));
}
