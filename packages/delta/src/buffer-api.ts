import { DeltaDecoder } from './delta-decoder.js';
import { createEncoder, type DeltaFormat } from './delta-format.js';
import { DeltaMatcher } from './delta-matcher.js';
import { createHasher } from './hash.js';
import { checkBasisLength, checkCopy, failResult, resultMatches } from './patch-check.js';
import type { Signature } from './signature.js';

export interface DeltaOptions {
  /** `mimic` (default) carries lengths and hashes; `librsync` is what `rdiff patch` reads. */
  format?: DeltaFormat;
  /**
   * Streaming only: emit what is known after every this many target bytes, even a copy run
   * still growing, so that a receiver can patch while the target is still being read.
   */
  flushEveryBytes?: number;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Delta that turns the basis described by `sig` into `target`. */
export function delta(sig: Signature, target: Uint8Array, options: DeltaOptions = {}): Uint8Array {
  const encoder = createEncoder(options.format ?? 'mimic', { length: sig.fileLength, hash: sig.fileHash });
  const matcher = new DeltaMatcher(sig, encoder);
  matcher.push(target);
  encoder.end(matcher.finish());
  return concat(encoder.out.drain(true), encoder.out.total);
}

/**
 * Applies a delta (mimic or librsync format, told apart by its magic) to `basis`.
 * Returns the verified result; throws a DeltaError otherwise.
 */
export function patch(basis: Uint8Array, deltaBytes: Uint8Array): Uint8Array {
  const decoder = new DeltaDecoder();
  const commands = decoder.push(deltaBytes);
  checkBasisLength(decoder, basis.length);
  const parts: Uint8Array[] = [];
  const hasher = createHasher();
  let written = 0;
  for (const c of commands) {
    let part: Uint8Array;
    if (c.type === 'copy') {
      checkCopy(c.offset, c.length, basis.length);
      part = basis.subarray(c.offset, c.offset + c.length);
    } else {
      part = c.data;
    }
    hasher.update(part);
    parts.push(part);
    written += part.length;
  }
  const hash = hasher.digest();
  if (!resultMatches(decoder, written, hash)) {
    const h = createHasher();
    h.update(basis);
    failResult(decoder, written, hash, h.digest());
  }
  return concat(parts, written);
}
