import { closeSync, fstatSync, readSync, type Stats } from 'node:fs';
import {
  createHasher,
  decodeSignature,
  deltaStream,
  encodeSignature,
  hashToHex,
  readChunks,
  type Signature,
  SignatureBuilder,
} from '@mimic/delta';
import { dataRanges, type Range } from '@mimic/fsmeta';
import type { PathAttrs, WriteOp } from '@mimic/wire';
import { hashZeros, looksSparse } from '../node/holes.js';
import { attrsOf, openToRead, SIGNATURE_MIN_BYTES } from '../node/local-fs.js';

/** Bytes of file content or delta carried by one write message. */
export const PART_BYTES = 1024 * 1024;
/**
 * A delta part goes out after at most this much of the file was read, even if small, so the
 * mirror patches while the primary is still reading (a delta of a few edits is tiny, and
 * would otherwise arrive all at the end).
 */
const PROGRESS_BYTES = 8 * 1024 * 1024;
export interface WriteSource extends PathAttrs {
  abs: string;
  path: string;
  mode: number;
  mtimeMs: number;
  size: number;
  hash: string;
  /** Signature of the version the mirror holds, and that version's hash: send a delta. */
  base?: { hash: string; signature: Uint8Array | Signature };
  /**
   * Where the block signature of the version sent goes, for the delta of its next change (files
   * of at least SIGNATURE_MIN_BYTES; none is made without this). Signing never holds up a part.
   */
  sign?: {
    /** A file sent whole in one part: its hash and content, to be signed when there is time. */
    later: (path: string, hash: string, content: Uint8Array) => void;
    /** Any other file: its signature, from a second read once its last part is out. */
    keep: (hash: string, signature: Uint8Array) => void;
  };
}

interface ReadResult {
  torn: boolean;
  length: number;
  hash: string;
}

/** Chunks of a read are at least this large, however small the file was when opened. */
const MIN_CHUNK = 64 * 1024;

/**
 * The file's content in chunks, hashed on the way, checked for tearing at the end. A file that
 * grows past its size at open is torn: the read stops there (a file opened just after a writer
 * truncated it was otherwise read to the writer's end, a byte per read, as long as it wrote).
 */
async function* contentOf(
  fd: number,
  before: Stats,
  progress: { read: number },
  done: (r: ReadResult) => void,
): AsyncGenerator<Uint8Array> {
  const hasher = createHasher();
  let length = 0;
  for await (const chunk of readChunks({ fd }, true, 0, Math.max(MIN_CHUNK, before.size + 1))) {
    length += chunk.length;
    progress.read = length;
    hasher.update(chunk);
    yield chunk;
    if (length > before.size) break;
  }
  const after = fstatSync(fd);
  const torn =
    after.size !== before.size ||
    after.mtimeMs !== before.mtimeMs ||
    after.ctimeMs !== before.ctimeMs ||
    length !== after.size;
  done({ torn, length, hash: hashToHex(hasher.digest()) });
}

/** Reads up to `buf.length` bytes at `position`; fewer only where the file ends. */
function readAt(fd: number, buf: Uint8Array, position: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * The parts of a sparse file sent whole: its data regions only, each part at its `offset` and
 * never across a hole (a region longer than PART_BYTES goes in several), so holes cost nothing
 * on the wire. The hash is the whole file's, holes hashed as the zeros a read would give. The
 * last part is the last data part (or an empty one at the end, for a file all hole); it is
 * held back until the file was checked for tearing, as `contentOf` does.
 */
async function* sparseParts(
  fd: number,
  before: Stats,
  ranges: readonly Range[],
  head: ReturnType<typeof headOf>,
): AsyncGenerator<WriteOp, ReadResult> {
  const size = before.size;
  const hasher = createHasher();
  let hashed = 0;
  let torn = false;
  let part = 0;
  let held: WriteOp = { ...head, size, part, last: false, offset: size, data: new Uint8Array(0) };
  for (const [start, stop] of ranges) {
    const end = Math.min(stop, size); // the file may have grown since it was opened
    for (let at = start; at < end && !torn; at += PART_BYTES) {
      const data = Buffer.allocUnsafe(Math.min(PART_BYTES, end - at));
      const got = readAt(fd, data, at);
      torn = got < data.length; // it shrank
      await hashZeros(hasher, at - hashed);
      hasher.update(data.subarray(0, got));
      hashed = at + got;
      if (part > 0) yield held;
      held = { ...head, size, part: part++, last: false, offset: at, data: data.subarray(0, got) };
    }
  }
  const after = fstatSync(fd);
  torn ||= after.size !== size || after.mtimeMs !== before.mtimeMs || after.ctimeMs !== before.ctimeMs;
  if (!torn) await hashZeros(hasher, size - hashed);
  const result = { torn, length: size, hash: torn ? head.hash : hashToHex(hasher.digest()) };
  yield { ...held, hash: result.hash, last: true, ...(torn ? { abort: true } : {}) };
  return result;
}

/**
 * The block signature of the version just sent, from a second read of the same open file
 * (from the page cache, as a rule); null if what it reads now is not that version.
 */
async function signatureOf(fd: number, sent: ReadResult): Promise<Signature | null> {
  const builder = new SignatureBuilder(sent.length);
  let length = 0;
  for await (const chunk of readChunks({ fd }, true)) {
    length += chunk.length;
    if (length > sent.length) return null;
    builder.update(chunk);
  }
  if (length !== sent.length) return null;
  const sig = builder.finish();
  return hashToHex(sig.fileHash) === sent.hash ? sig : null;
}

/** The path is gone, or no longer a regular file: coded as gone, so the sender sends its delete. */
function notAFile(path: string): Error {
  return Object.assign(new Error(`${path}: no longer a regular file`), { code: 'ENOENT' });
}

/** The fields every part of a file's write op shares: a delta's name its basis. */
function headOf(src: WriteSource, sig: Signature | null) {
  return {
    kind: 'write' as const,
    path: src.path,
    mode: src.mode,
    mtimeMs: src.mtimeMs,
    ...attrsOf(src),
    size: src.size,
    hash: src.hash,
    encoding: sig ? ('delta' as const) : ('full' as const),
    ...(src.base && sig ? { baseHash: src.base.hash } : {}),
  };
}

/**
 * The one part of a file whose content (at most PART_BYTES) was read already and goes whole,
 * handed to `sign.later` when it is large enough to be sent as a delta next time. Most files of
 * a large tree leave this way, without a read or a generator of their own.
 */
export function wholePart(
  file: PathAttrs & { path: string; mode: number; mtimeMs: number },
  hash: string,
  data: Uint8Array,
  sign?: WriteSource['sign'],
): WriteOp {
  if (sign && data.length >= SIGNATURE_MIN_BYTES) sign.later(file.path, hash, data);
  // The fields in the order `headOf` gives them, so that every write op has one shape.
  return {
    kind: 'write',
    path: file.path,
    mode: file.mode,
    mtimeMs: file.mtimeMs,
    ...attrsOf(file),
    size: data.length,
    hash,
    encoding: 'full',
    part: 0,
    last: true,
    data,
  };
}

/**
 * The write op's parts for one file, read now (a file whose content is at hand goes by
 * `wholePart`): whole content (of a sparse file, only its data: `sparseParts`), or a delta
 * against the base the mirror holds. Parts carry at most PART_BYTES. The last part carries the
 * size and hash of what was actually read (it may be newer than the journal's), or `abort` when
 * the file changed while it was read: the mirror then keeps its copy and a later op brings the
 * new one.
 */
export async function* writeParts(src: WriteSource): AsyncGenerator<WriteOp> {
  // Opened as the tracker reads: never through a link put in its place, never waiting on a fifo.
  const fd = openToRead(src.abs);
  if (fd === null) throw notAFile(src.path);
  try {
    const opened = fstatSync(fd);
    if (!opened.isFile()) throw notAFile(src.path);
    const size = opened.size;
    const base = src.base;
    const sig = base
      ? base.signature instanceof Uint8Array
        ? decodeSignature(base.signature)
        : base.signature
      : null;
    const head = headOf(src, sig);
    // A dense file costs no more than the fstat above. Too many regions (null) and it goes as
    // a dense one: a bound on what one file costs.
    const ranges = !sig && looksSparse(opened) ? dataRanges(fd) : null;
    if (ranges) {
      const sent = yield* sparseParts(fd, opened, ranges, head);
      if (sent.torn || !src.sign || sent.length < SIGNATURE_MIN_BYTES) return;
      const signature = await signatureOf(fd, sent);
      if (signature) src.sign.keep(sent.hash, encodeSignature(signature));
      return;
    }
    let result: ReadResult = { torn: true, length: 0, hash: src.hash };
    const progress = { read: 0 };
    const chunks = contentOf(fd, opened, progress, (r) => {
      result = r;
    });
    const source = sig ? deltaStream(sig, chunks, { flushEveryBytes: PROGRESS_BYTES }) : chunks;
    let part = 0;
    // Chunks of the file itself are views of a reused buffer: each byte is copied once, here.
    // A whole small file needs a buffer of about its own size, not of a part's (20,000 small
    // files would otherwise churn through 20 GB of allocations). A file that turns out larger
    // than it was when opened (it is being written) gets full-size parts after the first.
    let buf = Buffer.allocUnsafe(sig ? PART_BYTES : Math.min(PART_BYTES, Math.max(size, 1)));
    let fill = 0;
    let readAtLastPart = 0;
    const take = (last = false): Uint8Array => {
      const data = buf.subarray(0, fill);
      // The socket may hold the part until it is flushed, so the next one gets a new buffer.
      if (!last) buf = Buffer.allocUnsafe(PART_BYTES);
      fill = 0;
      readAtLastPart = progress.read;
      return data;
    };
    for await (const chunk of source) {
      for (let o = 0; o < chunk.length; ) {
        if (fill === buf.length) yield { ...head, part: part++, last: false, data: take() };
        const n = Math.min(buf.length - fill, chunk.length - o);
        buf.set(chunk.subarray(o, o + n), fill);
        fill += n;
        o += n;
      }
      if (sig && fill > 0 && progress.read - readAtLastPart >= PROGRESS_BYTES) {
        yield { ...head, part: part++, last: false, data: take() };
      }
    }
    const last: WriteOp = {
      ...head,
      size: result.length,
      hash: result.hash,
      part,
      last: true,
      data: take(true),
    };
    if (result.torn) last.abort = true;
    yield last;
    if (result.torn || !src.sign || result.length < SIGNATURE_MIN_BYTES) return;
    if (!sig && part === 0) {
      // The whole file is this one part's data (a delta's data is not the file).
      src.sign.later(src.path, result.hash, last.data);
      return;
    }
    // Signed after its last part has gone: the mirror finishes the file meanwhile.
    const signature = await signatureOf(fd, result);
    if (signature) src.sign.keep(result.hash, encodeSignature(signature));
  } finally {
    closeSync(fd);
  }
}
