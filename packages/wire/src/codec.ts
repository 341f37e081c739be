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

/** `packr.pack`, failing as ERR_BAD_MESSAGE. */
function pack(value: unknown): Uint8Array {
  try {
    return packr.pack(value);
  } catch (err) {
    throw new WireError('ERR_BAD_MESSAGE', `message: cannot be encoded (${errorText(err)})`, { cause: err });
  }
}

export interface EncodeOptions {
  /**
   * Skip `validateMessage`: for messages a sender built from state it has already checked (a
   * primary's journal). The size limit still applies, and receivers validate everything.
   */
  trusted?: boolean;
}

/**
 * Validates `msg` and encodes it as one msgpack value. Throws `WireError` with the codes of
 * `validateMessage`, or `ERR_TOO_LARGE` when the result would exceed `maxMessageBytes`.
 *
 * The result is a `Uint8Array` view into a larger buffer shared with earlier results; it stays
 * valid and unchanged, but copy it before handing its `.buffer` to anything that reads all of it.
 */
export function encode(msg: Message, limits?: WireLimitsOptions, options?: EncodeOptions): Uint8Array {
  const resolved = resolveLimits(limits);
  if (!options?.trusted) validateMessage(msg, resolved);
  // Fail before packing many megabytes that could never be sent.
  if (msg.type === 'op' && msg.op.kind === 'write' && msg.op.data.length > resolved.maxMessageBytes) {
    throw tooLarge(msg.op.data.length, resolved);
  }
  const bytes = pack(msg);
  if (bytes.length > resolved.maxMessageBytes) throw tooLarge(bytes.length, resolved);
  return plainView(bytes);
}

/** Content shorter than this is copied into its message: a second frame would cost more. */
const SPLIT_MIN_BYTES = 4096;
const EMPTY = new Uint8Array(0);

/**
 * `encode` for sending: the same msgpack value, as one or two pieces whose concatenation is the
 * message. A write op's content is not copied: the first piece ends with a 32-bit bin header and
 * the second is `op.data` itself, so a sender can pass both to the socket as two fragments of one
 * WebSocket message. Other messages, and small contents, come back as one piece.
 */
export function encodePieces(
  msg: Message,
  limits?: WireLimitsOptions,
  options?: EncodeOptions,
): Uint8Array[] {
  if (msg.type !== 'op' || msg.op.kind !== 'write' || msg.op.data.length < SPLIT_MIN_BYTES) {
    return [encode(msg, limits, options)];
  }
  const resolved = resolveLimits(limits);
  if (!options?.trusted) validateMessage(msg, resolved);
  const { data, ...rest } = msg.op;
  // Key order is kept: `op` last in the message and `data` last in `op`, so the packed value
  // ends with the empty bin (0xc4 0x00) that stands in for the content.
  const { op: _op, ...head } = msg;
  const prefix = pack({ ...head, op: { ...rest, data: EMPTY } });
  const total = prefix.length - 2 + 5 + data.length;
  if (total > resolved.maxMessageBytes) throw tooLarge(total, resolved);
  const out = Buffer.allocUnsafe(prefix.length + 3);
  out.set(prefix.subarray(0, prefix.length - 2));
  const at = prefix.length - 2;
  out[at] = 0xc6;
  out.writeUInt32BE(data.length, at + 1);
  return [plainView(out), data];
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
