import { type Options, Packr } from 'msgpackr';
import { WireError } from './errors.js';
import { resolveLimits, type WireLimits, type WireLimitsOptions } from './limits.js';
import type { Message } from './messages.js';
import { validateMessage } from './validate.js';

/**
 * One msgpack value per message, as plain maps, strings, numbers, booleans and bin. Records, shared
 * structures and structured-clone references are off: record state would not survive a reconnect
 * or a failover, and every message must decode on its own, on any msgpack implementation.
 */
const PACKR_OPTIONS: Options & { skipValues: unknown[] } = {
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  // Other encoders may write safe integers as int64; read them as numbers, the checks refuse
  // anything beyond the safe range.
  int64AsType: 'number',
  // Optional fields set to `undefined` are left out rather than sent as msgpack's nil-like ext.
  skipValues: [undefined],
};

const packr = new Packr(PACKR_OPTIONS);

/** Bytes a `write` op needs besides its `data`, with room to spare: path, hashes, keys, numbers. */
const WRITE_OVERHEAD_BYTES = 1024;

/**
 * The most `data` one `write` op may carry so that its message stays within `maxMessageBytes`
 * whatever its path. Senders split file content into parts of at most this size.
 */
export function maxWriteDataBytes(limits?: WireLimitsOptions): number {
  const resolved = resolveLimits(limits);
  return Math.max(0, resolved.maxMessageBytes - resolved.maxPathBytes - WRITE_OVERHEAD_BYTES);
}

function tooLarge(length: number, limits: WireLimits): WireError {
  return new WireError(
    'ERR_TOO_LARGE',
    `message: ${length} bytes, over the ${limits.maxMessageBytes} byte limit`,
  );
}

/**
 * Validates `msg` and encodes it as one msgpack value. Throws `WireError` with the codes of
 * `validateMessage`, or `ERR_TOO_LARGE` when the result would exceed `maxMessageBytes`.
 *
 * The result is a `Uint8Array` view into a larger buffer shared with earlier results; it stays
 * valid and unchanged, but copy it before handing its `.buffer` to anything that reads all of it.
 */
export function encode(msg: Message, limits?: WireLimitsOptions): Uint8Array {
  const resolved = resolveLimits(limits);
  validateMessage(msg, resolved);
  // Fail before packing many megabytes that could never be sent.
  if (msg.type === 'op' && msg.op.kind === 'write' && msg.op.data.length > resolved.maxMessageBytes) {
    throw tooLarge(msg.op.data.length, resolved);
  }
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(msg);
  } catch (err) {
    throw new WireError('ERR_BAD_MESSAGE', `message: cannot be encoded (${errorText(err)})`, { cause: err });
  }
  if (bytes.length > resolved.maxMessageBytes) throw tooLarge(bytes.length, resolved);
  return plainView(bytes);
}

/**
 * Decodes one message. The length is checked against `maxMessageBytes` before any decoding
 * (`ERR_TOO_LARGE`); bytes that are not exactly one msgpack value give `ERR_DECODE`; the value is
 * then checked by `validateMessage`. Every failure is a `WireError`.
 *
 * Binary fields of the result (`nonce`, `proof`, `data`, `signature`) are plain `Uint8Array` views
 * into `bytes`, not copies: do not reuse `bytes` while the message is in use.
 */
export function decode(bytes: Uint8Array, limits?: WireLimitsOptions): Message {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decode: expected a Uint8Array');
  const resolved = resolveLimits(limits);
  if (bytes.length > resolved.maxMessageBytes) throw tooLarge(bytes.length, resolved);
  if (bytes.length === 0) throw new WireError('ERR_DECODE', 'message: no bytes');
  let value: unknown;
  try {
    value = packr.unpack(plainView(bytes));
  } catch (err) {
    throw new WireError('ERR_DECODE', `message: not one msgpack value (${errorText(err)})`, { cause: err });
  }
  return validateMessage(value, resolved);
}

/**
 * A plain `Uint8Array` over the same memory. Decoding from it makes every binary field a plain
 * `Uint8Array` whether the input was a `Buffer` or not, and keeps the decoder from caching state
 * on the caller's object.
 */
function plainView(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The first line of a foreign error's message, shortened; never throws. */
function errorText(err: unknown): string {
  let text = 'unknown error';
  try {
    text = err instanceof Error ? err.message : String(err);
  } catch {
    // An error whose message cannot be read still becomes a WireError.
  }
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 120 ? `${line.slice(0, 120)}…` : line;
}
