/**
 * The one error class of `@mimic/wire`. Callers branch on `code`, never on the message text.
 *
 * - `ERR_BAD_MESSAGE`: a field is missing, has the wrong type or value, or is not part of the message.
 * - `ERR_BAD_PATH`: a path is not a relative, normalised POSIX path, or a symlink target is invalid.
 * - `ERR_TOO_LARGE`: a message exceeds `maxMessageBytes`, checked before any decoding.
 * - `ERR_DECODE`: the bytes are not one well-formed msgpack value (junk, truncation, trailing bytes).
 * - `ERR_UNKNOWN_TYPE`: the message `type` or the op `kind` is not one this version knows.
 * - `ERR_PROTOCOL_VERSION`: a hello names another protocol or another protocol version.
 */
export const WIRE_ERROR_CODES = [
  'ERR_BAD_MESSAGE',
  'ERR_BAD_PATH',
  'ERR_TOO_LARGE',
  'ERR_DECODE',
  'ERR_UNKNOWN_TYPE',
  'ERR_PROTOCOL_VERSION',
] as const;

export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];

/** Thrown by every check in this package; `code` is stable, `message` is one line for humans. */
export class WireError extends Error {
  readonly code: WireErrorCode;

  constructor(code: WireErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WireError';
    this.code = code;
  }
}

/** True when `err` is a {@link WireError}, optionally with the given code. */
export function isWireError(err: unknown, code?: WireErrorCode): err is WireError {
  return err instanceof WireError && (code === undefined || err.code === code);
}

/** A short, single-line rendering of a rejected value, for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'object') {
    return `an object (${Object.getPrototypeOf(value)?.constructor?.name ?? 'null'})`;
  }
  return typeof value;
}
