/**
 * Stable error codes of @mimic/delta. Code that handles errors should switch on `code`,
 * never on message text.
 *
 * - `ERR_BAD_SIGNATURE`: a signature is malformed (bad magic, bad header, inconsistent sizes).
 * - `ERR_BAD_DELTA`: a delta is malformed or its result fails verification.
 * - `ERR_TRUNCATED`: a signature or delta ends before its declared end.
 * - `ERR_BASIS_MISMATCH`: the basis given to `patch` is not the one the delta was made against.
 * - `ERR_UNSUPPORTED_VERSION`: a known magic with a format version this library cannot read.
 * - `ERR_INVALID_ARGUMENT`: an option or argument is out of range.
 */
export type DeltaErrorCode =
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_BAD_DELTA'
  | 'ERR_TRUNCATED'
  | 'ERR_BASIS_MISMATCH'
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_INVALID_ARGUMENT';

/** The one error class of @mimic/delta. */
export class DeltaError extends Error {
  readonly code: DeltaErrorCode;

  constructor(code: DeltaErrorCode, message: string) {
    super(message);
    this.name = 'DeltaError';
    this.code = code;
  }
}

export function isDeltaError(err: unknown): err is DeltaError {
  return err instanceof DeltaError;
}
