// W6's file and its successive versions: each one the previous with 1-5% of its 16 KiB blocks
// (a database page size) rewritten at random places, the size unchanged. Deterministic: the
// bytes come from seeded streams, the share and the places from a seeded PRNG.
import { closeSync, copyFileSync, openSync, writeSync } from 'node:fs';
import { byteStream, KiB, rng, writeRandomFile } from '../lib.mjs';
import { fileHash } from './exec.mjs';

export const BLOCK = 16 * KiB;

/** Writes version 0, `size` random bytes, to `path`: { hash }. */
export function firstVersion(path, size, seed = 6) {
  writeRandomFile(path, size, `w6-${seed}`);
  return { hash: fileHash(path) };
}

/**
 * Writes version `n` (1, 2, ...) to `next` from version n-1 at `prev`: a copy with a seeded
 * share of 1-5% of its whole blocks overwritten by new random bytes. Returns { hash, pct,
 * blocks } (the share in percent and how many blocks changed).
 */
export function nextVersion(prev, next, size, n, seed = 6) {
  const r = rng(seed * 1000 + n);
  const total = Math.floor(size / BLOCK);
  const pct = 1 + r.int(5);
  const blocks = Math.max(1, Math.round((total * pct) / 100));
  const at = r.pick(total, blocks).sort((a, b) => a - b);
  copyFileSync(prev, next);
  const bytes = byteStream(`w6-${seed}-v${n}`);
  const fd = openSync(next, 'r+');
  try {
    for (const b of at) writeSync(fd, bytes.take(BLOCK), 0, BLOCK, b * BLOCK);
  } finally {
    closeSync(fd);
  }
  return { hash: fileHash(next), pct, blocks };
}
