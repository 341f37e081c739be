import type { DeltaDecoder } from './delta-decoder.js';
import { DeltaError } from './errors.js';
import { hashToHex } from './hash.js';

/** Checks the basis length against a mimic delta's header, before any byte is written. */
export function checkBasisLength(decoder: DeltaDecoder, basisLength: number): void {
  const basis = decoder.basis;
  if (basis && basis.length !== basisLength) {
    throw new DeltaError(
      'ERR_BASIS_MISMATCH',
      `basis is ${basisLength} bytes but the delta was made against ${basis.length} bytes`,
    );
  }
}

/** Checks a copy command against the basis bounds. */
export function checkCopy(offset: number, length: number, basisLength: number): void {
  if (offset + length > basisLength) {
    throw new DeltaError(
      'ERR_BASIS_MISMATCH',
      `delta copies bytes ${offset}..${offset + length} but the basis has only ${basisLength}`,
    );
  }
}

/**
 * After the last command: does the result have the declared length and hash? (librsync
 * deltas declare neither.) When it does not, call `failResult` with the basis hash: it is
 * computed only on that failure path, so a good patch never reads the basis twice.
 */
export function resultMatches(decoder: DeltaDecoder, written: number, hash: bigint): boolean {
  decoder.end();
  const t = decoder.trailer;
  return !t || (t.targetLength === written && t.targetHash === hash);
}

export function failResult(decoder: DeltaDecoder, written: number, hash: bigint, basisHash: bigint): never {
  if (decoder.basis && basisHash !== decoder.basis.hash) {
    throw new DeltaError(
      'ERR_BASIS_MISMATCH',
      'basis content differs from the one the delta was made against',
    );
  }
  const t = decoder.trailer!;
  throw new DeltaError(
    'ERR_BAD_DELTA',
    `patched result fails verification: ${written} bytes with xxh64 ${hashToHex(hash)}, expected ${t.targetLength} bytes with ${hashToHex(t.targetHash)}`,
  );
}
