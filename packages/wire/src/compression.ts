import zlib from 'node:zlib';
import { decode, encodePieces } from './codec.js';
import { WireError } from './errors.js';
import { resolveLimits, type WireLimitsOptions } from './limits.js';
import {
  CODECS,
  type Codec,
  type CompressedMessage,
  type HelloMessage,
  type Message,
  type MessageType,
} from './messages.js';

/*
 * Whole messages compressed for slow links. Each message is compressed on its own (no state
 * carried between messages, as with the codec itself), after it was encoded:
 *
 *   sender    encodePieces(msg) → worth it? (a deflate of a few KiB sampled across it shrinks
 *             by 10% or more) → compress asynchronously (zlib's thread pool, never a long call
 *             on the event loop) → sent as `compressed` only if smaller, else as it was
 *   receiver  decode → `compressed` → inflate into at most `rawLength` bytes (itself at most the
 *             message limit) → exactly `rawLength` bytes, or the connection is refused → decode
 *
 * A bomb stops inflating one chunk past `rawLength`; a lying `rawLength` is refused; neither
 * allocates more than the message limit.
 */

/** Messages shorter than this go as they are: a compressed wrapper would save nothing. */
export const MIN_COMPRESS_BYTES = 512;

/** Messages that always travel as they are: the handshake, and a compressed one itself. */
export const NEVER_COMPRESSED: ReadonlySet<MessageType> = new Set<MessageType>([
  'hello',
  'auth',
  'welcome',
  'compressed',
]);

const SAMPLE_WINDOW = 4096;
const SAMPLE_WINDOWS = 4;
/** A sample that deflates to more than this share of its size is taken as incompressible. */
const WORTH_RATIO = 0.9;
/** What the `compressed` wrapper costs beyond its data: type, codec and length, with room. */
const WRAPPER_BYTES = 64;

const BROTLI_QUALITY = 4;
const DEFLATE_LEVEL = 6;
const ZSTD_LEVEL = 3;
/** zstd's window, capped for decoding: 8 MiB, the default message limit. */
const ZSTD_WINDOW_LOG_MAX = 23;

type Done = (err: Error | null, out: Buffer) => void;
type ZlibCall = (buf: Uint8Array, options: zlib.ZlibOptions & zlib.BrotliOptions, done: Done) => void;

/** zstd in node:zlib, where this Node has it (22.15 and later). */
interface ZstdZlib {
  zstdCompress?: ZlibCall;
  zstdDecompress?: ZlibCall;
  zstdCompressSync?: unknown;
  constants: { ZSTD_c_compressionLevel?: number; ZSTD_d_windowLogMax?: number };
}

const z = zlib as unknown as ZstdZlib;

const HAS_ZSTD = typeof z.zstdCompressSync === 'function' && typeof z.zstdCompress === 'function';

/** The codecs this process compresses and decompresses, most preferred first. */
export function availableCodecs(): Codec[] {
  return CODECS.filter((c) => c !== 'zstd' || HAS_ZSTD);
}

/**
 * The codec for a link, as the primary picks it: compression when either side asks (`ask`, or
 * the peer's hello), in the order of `ours` among those the peer's hello lists; null when
 * neither asks or they share none.
 */
export function chooseCodec(
  ask: boolean,
  ours: readonly Codec[],
  peer: Pick<HelloMessage, 'codecs' | 'compress'>,
): Codec | null {
  if (!ask && peer.compress !== true) return null;
  const theirs = new Set(peer.codecs ?? []);
  return ours.find((c) => theirs.has(c)) ?? null;
}

function run(call: ZlibCall, input: Uint8Array, options: zlib.ZlibOptions & zlib.BrotliOptions) {
  return new Promise<Buffer>((resolve, reject) =>
    call(input, options, (err, out) => (err ? reject(err) : resolve(out))),
  );
}

function compressBytes(codec: Codec, raw: Uint8Array): Promise<Buffer> {
  switch (codec) {
    case 'zstd':
      return run(z.zstdCompress!, raw, {
        params: { [z.constants.ZSTD_c_compressionLevel!]: ZSTD_LEVEL },
      } as zlib.ZlibOptions);
    case 'brotli':
      return run(zlib.brotliCompress as unknown as ZlibCall, raw, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
        },
      });
    case 'deflate':
      return run(zlib.deflateRaw as unknown as ZlibCall, raw, { level: DEFLATE_LEVEL });
  }
}

function decompressBytes(codec: Codec, data: Uint8Array, maxOutputLength: number): Promise<Buffer> {
  switch (codec) {
    case 'zstd': {
      const windowLog = z.constants.ZSTD_d_windowLogMax;
      return run(z.zstdDecompress!, data, {
        maxOutputLength,
        ...(windowLog === undefined ? {} : { params: { [windowLog]: ZSTD_WINDOW_LOG_MAX } }),
      } as zlib.ZlibOptions);
    }
    case 'brotli':
      return run(zlib.brotliDecompress as unknown as ZlibCall, data, { maxOutputLength });
    case 'deflate':
      return run(zlib.inflateRaw as unknown as ZlibCall, data, { maxOutputLength });
  }
}

/**
 * Whether `bytes` (one buffer, or the pieces of one message) looks compressible: a fast deflate
 * of up to four 4 KiB windows spread across it must shrink them by a tenth. Random or already
 * compressed content fails in microseconds, and nothing is copied but the windows.
 */
export function worthCompressing(bytes: Uint8Array | readonly Uint8Array[]): boolean {
  const pieces = bytes instanceof Uint8Array ? [bytes] : bytes;
  let total = 0;
  for (const p of pieces) total += p.length;
  if (total < MIN_COMPRESS_BYTES) return false;
  const windows = Math.min(SAMPLE_WINDOWS, Math.ceil(total / SAMPLE_WINDOW));
  const step = windows > 1 ? Math.floor((total - SAMPLE_WINDOW) / (windows - 1)) : 0;
  const sample = Buffer.allocUnsafe(Math.min(total, windows * SAMPLE_WINDOW));
  let filled = 0;
  for (let w = 0; w < windows && filled < sample.length; w++) {
    filled += copyRange(pieces, w * step, Math.min(SAMPLE_WINDOW, sample.length - filled), sample, filled);
  }
  const view = sample.subarray(0, filled);
  return zlib.deflateRawSync(view, { level: 1 }).length <= view.length * WORTH_RATIO;
}

/** Copies `length` bytes from offset `from` of the pieces' concatenation into `out` at `at`. */
function copyRange(
  pieces: readonly Uint8Array[],
  from: number,
  length: number,
  out: Buffer,
  at: number,
): number {
  let skip = from;
  let copied = 0;
  for (const p of pieces) {
    if (copied === length) break;
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    const n = Math.min(p.length - skip, length - copied);
    out.set(p.subarray(skip, skip + n), at + copied);
    copied += n;
    skip = 0;
  }
  return copied;
}

/**
 * One encoded message (the pieces `encodePieces` made) as the pieces of a `compressed` message
 * with `codec`, or null when it is not worth it: too short, incompressible by the sample, or
 * not smaller once compressed (`sampled`: the caller has already found it worthCompressing).
 * The compression runs in zlib's thread pool.
 */
export async function compressPieces(
  pieces: readonly Uint8Array[],
  codec: Codec,
  limits?: WireLimitsOptions,
  { sampled = false }: { sampled?: boolean } = {},
): Promise<Uint8Array[] | null> {
  if (!sampled && !worthCompressing(pieces)) return null;
  const raw = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  const data = await compressBytes(codec, raw);
  if (data.length + WRAPPER_BYTES >= raw.length) return null;
  const msg: CompressedMessage = { type: 'compressed', codec, rawLength: raw.length, data };
  return encodePieces(msg, limits, { trusted: true });
}

function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n', 1)[0] ?? '').slice(0, 120);
}

/**
 * The message a `compressed` one carries, decoded and validated like any other. Throws
 * `WireError`: `ERR_TOO_LARGE` when it inflates past `rawLength` (a bomb) or `rawLength` is
 * over the message limit, `ERR_DECODE` when the data is not valid for its codec or inflates to
 * fewer bytes than `rawLength` says, `ERR_BAD_MESSAGE` for a codec this process lacks or a
 * message that is never compressed (another `compressed`, a hello, auth or welcome), and the
 * codes of `decode` for what it carries.
 */
export async function expandMessage(msg: CompressedMessage, limits?: WireLimitsOptions): Promise<Message> {
  const resolved = resolveLimits(limits);
  if (!availableCodecs().includes(msg.codec))
    throw new WireError('ERR_BAD_MESSAGE', `compressed.codec: ${msg.codec} is not available here`);
  if (!Number.isSafeInteger(msg.rawLength) || msg.rawLength < 1 || msg.rawLength > resolved.maxMessageBytes)
    throw new WireError(
      'ERR_TOO_LARGE',
      `compressed.rawLength: ${msg.rawLength} bytes, over the ${resolved.maxMessageBytes} byte limit`,
    );
  let bytes: Buffer;
  try {
    bytes = await decompressBytes(msg.codec, msg.data, msg.rawLength);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
      throw new WireError(
        'ERR_TOO_LARGE',
        `compressed: inflates past its raw length of ${msg.rawLength} bytes`,
      );
    throw new WireError('ERR_DECODE', `compressed: not valid ${msg.codec} data (${errorText(err)})`, {
      cause: err,
    });
  }
  if (bytes.length !== msg.rawLength)
    throw new WireError(
      'ERR_DECODE',
      `compressed: inflates to ${bytes.length} bytes, not the ${msg.rawLength} its raw length says`,
    );
  const inner = decode(bytes, resolved);
  if (NEVER_COMPRESSED.has(inner.type))
    throw new WireError('ERR_BAD_MESSAGE', `compressed: carries a ${inner.type}, which is never compressed`);
  return inner;
}
