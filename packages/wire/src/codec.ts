import { type Options, Packr } from 'msgpackr';
import { WireError } from './errors.js';
import { resolveLimits, type WireLimits, type WireLimitsOptions } from './limits.js';
import type { Message, Op, OpsMessage, WriteOp } from './messages.js';
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

/** Content shorter than this is copied into its message: a piece of its own would cost more. */
const SPLIT_MIN_BYTES = 4096;
const EMPTY = new Uint8Array(0);
const NO_OPS: Op[] = [];

const splits = (op: Op): op is WriteOp => op.kind === 'write' && op.data.length >= SPLIT_MIN_BYTES;

/**
 * `encode` for sending: the same msgpack value, as pieces whose concatenation is the message.
 * File content is not copied: each write op (in an `op` or an `ops` message) with at least
 * SPLIT_MIN_BYTES of `data` is packed with an empty bin in its place (`data` is its last key),
 * whose header is then rewritten as a 32-bit one, and the content itself follows as a piece of
 * its own. A sender passes the pieces to the socket as fragments of one WebSocket message.
 * Messages with no such content come back as one piece.
 */
export function encodePieces(
  msg: Message,
  limits?: WireLimitsOptions,
  options?: EncodeOptions,
): Uint8Array[] {
  const ops = msg.type === 'op' ? [msg.op] : msg.type === 'ops' ? msg.ops : NO_OPS;
  if (!ops.some(splits)) return [encode(msg, limits, options)];
  const resolved = resolveLimits(limits);
  if (!options?.trusted) validateMessage(msg, resolved);
  const out = new Pieces();
  if (msg.type === 'op') {
    // `op` last in the message, so the packed value ends with the op's own bytes.
    const { op, ...head } = msg;
    out.add(pack({ ...head, op: EMPTY_MAP }).subarray(0, -1)); // the empty map's 0x80
    out.write(op as WriteOp);
  } else {
    const { ops: _ops, ...head } = msg as OpsMessage;
    out.add(pack({ ...head, ops: NO_OPS }).subarray(0, -1)); // the empty array's 0x90
    out.add(arrayHeader(ops.length));
    for (const op of ops) {
      if (splits(op)) out.write(op);
      else out.add(pack(op));
    }
  }
  const pieces = out.done();
  let total = 0;
  for (const p of pieces) total += p.length;
  if (total > resolved.maxMessageBytes) throw tooLarge(total, resolved);
  return pieces;
}

const EMPTY_MAP = {};

/** msgpack's header for an array of `n` items. */
function arrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >> 8, n & 0xff);
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Pieces of a message being built: small runs of bytes are gathered into one piece. */
class Pieces {
  readonly #pieces: Uint8Array[] = [];
  #run: Uint8Array[] = [];

  /** Bytes that belong to the message here (copied into the current run). */
  add(bytes: Uint8Array): void {
    this.#run.push(bytes);
  }

  /** A write op whose `data` becomes a piece of its own. */
  write(op: WriteOp): void {
    const { data, ...rest } = op;
    // Ends with the empty bin (0xc4 0x00) that stands in for the content: a bin 32 header instead.
    const packed = pack({ ...rest, data: EMPTY });
    this.add(packed.subarray(0, -2));
    const header = Buffer.allocUnsafe(5);
    header[0] = 0xc6;
    header.writeUInt32BE(data.length, 1);
    this.add(header);
    this.#close();
    this.#pieces.push(data);
  }

  done(): Uint8Array[] {
    this.#close();
    return this.#pieces;
  }

  #close(): void {
    if (this.#run.length === 0) return;
    this.#pieces.push(plainView(Buffer.concat(this.#run)));
    this.#run = [];
  }
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
