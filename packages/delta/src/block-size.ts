import { DeltaError } from './errors.js';

/** Smallest and largest block sizes chosen automatically (rsync's bounds). */
export const MIN_BLOCK_SIZE = 700;
export const MAX_BLOCK_SIZE = 128 * 1024;
/** Largest block size accepted from a caller or a signature file. */
export const MAX_EXPLICIT_BLOCK_SIZE = 1 << 24;

/**
 * rsync's rule: the square root of the file length, rounded down to a multiple of 8,
 * kept within [700, 128 KiB]. It balances signature size against delta granularity.
 */
export function defaultBlockSize(fileLength: number): number {
  const root = Math.floor(Math.sqrt(fileLength)) & ~7;
  return Math.min(MAX_BLOCK_SIZE, Math.max(MIN_BLOCK_SIZE, root));
}

export function checkBlockSize(blockSize: number): number {
  if (!Number.isInteger(blockSize) || blockSize < 16 || blockSize > MAX_EXPLICIT_BLOCK_SIZE) {
    throw new DeltaError(
      'ERR_INVALID_ARGUMENT',
      `block size ${blockSize} is out of range (16..${MAX_EXPLICIT_BLOCK_SIZE})`,
    );
  }
  return blockSize;
}
