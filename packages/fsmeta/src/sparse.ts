/*
 * Holes: which regions of a file hold data (SEEK_DATA/SEEK_HOLE, so the holes are neither read
 * nor sent), and a writer that leaves zero blocks unwritten, so that a copy keeps its holes
 * (as rsync -S writes). Regions come as [start, end) byte offsets.
 */
import { ftruncateSync, writeSync } from 'node:fs';
import { native } from './native.js';

export type Range = readonly [start: number, end: number];

/** More regions than this and the file is treated as dense (a bound on what one file costs). */
export const MAX_RANGES = 4096;

/** The data regions of the open file `fd`; null when it has more than `maxRanges`. */
export function dataRanges(fd: number, maxRanges = MAX_RANGES): Range[] | null {
  const flat = native.dataRanges(fd, maxRanges);
  if (flat === null) return null;
  const out: Range[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** Bytes of data in `ranges` (what a sparse file costs to send). */
export const dataBytes = (ranges: readonly Range[]): number => ranges.reduce((n, [s, e]) => n + e - s, 0);

/** The block a hole is made of: zero runs shorter than this, or not aligned to it, are written. */
export const HOLE_BLOCK = 4096;

/**
 * Writes `buf` at `offset` into a file that was empty, skipping every aligned all-zero block:
 * those stay holes. Call `finishSparse` with the final size once all is written.
 */
export function writeSparse(fd: number, buf: Uint8Array, offset: number): void {
  let at = 0;
  while (at < buf.length) {
    // Up to the next block boundary of the file, so that skipped runs are whole blocks.
    const end = Math.min(buf.length, at + HOLE_BLOCK - ((offset + at) % HOLE_BLOCK));
    const chunk = buf.subarray(at, end);
    if (chunk.length < HOLE_BLOCK || !isZero(chunk)) writeSync(fd, chunk, 0, chunk.length, offset + at);
    at = end;
  }
}

/** Sets the final size, so that a trailing hole is part of the file. */
export function finishSparse(fd: number, size: number): void {
  ftruncateSync(fd, size);
}

function isZero(b: Uint8Array): boolean {
  if (b.byteOffset % 8 !== 0) return b.every((x) => x === 0);
  const words = new BigUint64Array(b.buffer, b.byteOffset, b.byteLength >> 3);
  for (const w of words) if (w !== 0n) return false;
  for (let i = words.length * 8; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Frees [offset, offset + length) of `fd` keeping its size; false where the filesystem cannot. */
export const punchHole = (fd: number, offset: number, length: number): boolean =>
  native.punchHole(fd, offset, length);
