import { fstatSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { DeltaOptions } from './buffer-api.js';
import { DeltaDecoder } from './delta-decoder.js';
import { createEncoder } from './delta-format.js';
import { DeltaMatcher } from './delta-matcher.js';
import { type AtomicWriteOptions, readChunks, readFileChunks, writeAtomic, writeChunks } from './file-io.js';
import { createHasher } from './hash.js';
import { checkBasisLength, checkCopy, failResult, resultMatches } from './patch-check.js';
import { PatchWriter } from './patch-writer.js';
import { type Signature, SignatureBuilder, type SignatureOptions } from './signature.js';
import { encodeSignature } from './signature-format.js';

/** Signature of a stream of known total length. */
export async function signatureStream(
  source: AsyncIterable<Uint8Array>,
  length: number,
  options?: SignatureOptions,
): Promise<Signature> {
  const builder = new SignatureBuilder(length, options);
  for await (const chunk of source) builder.update(chunk);
  return builder.finish();
}

/** Signature of a file, read in chunks: memory stays small whatever the file's size. */
export async function signatureFile(path: string, options?: SignatureOptions): Promise<Signature> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    return await signatureStream(readChunks(fh, true), size, options);
  } finally {
    await fh.close();
  }
}

/** Delta of a stream against a signature, produced as the target is read. */
export async function* deltaStream(
  sig: Signature,
  target: AsyncIterable<Uint8Array>,
  options: DeltaOptions = {},
): AsyncGenerator<Uint8Array> {
  const encoder = createEncoder(options.format ?? 'mimic', { length: sig.fileLength, hash: sig.fileHash });
  const matcher = new DeltaMatcher(sig, encoder);
  const every = options.flushEveryBytes ?? 0;
  let sinceFlush = 0;
  for await (const chunk of target) {
    matcher.push(chunk);
    sinceFlush += chunk.length;
    if (every > 0 && sinceFlush >= every) {
      sinceFlush = 0;
      matcher.flushCopy();
      yield* encoder.out.drain(true);
    } else {
      yield* encoder.out.drain();
    }
  }
  encoder.end(matcher.finish());
  yield* encoder.out.drain(true);
}

/** Delta of a file against a signature, as a stream of chunks. */
export function deltaFile(
  sig: Signature,
  targetPath: string,
  options?: DeltaOptions,
): AsyncGenerator<Uint8Array> {
  return deltaStream(sig, readFileChunks(targetPath, true), options);
}

export interface PatchResult {
  readonly length: number;
  /** xxh64 of the result. */
  readonly hash: bigint;
}

export type DeltaSource = Uint8Array | AsyncIterable<Uint8Array>;

function chunksOf(source: DeltaSource): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) {
    return (async function* () {
      yield source;
    })();
  }
  return source;
}

/**
 * Applies a delta to the basis file (or to an empty basis when `basis` is null), writing
 * the result to an open file handle. The result is verified before this resolves; the caller
 * owns the output file and decides what to do with it (see `patchFile` for the atomic form).
 */
export async function patchInto(
  basis: { readonly fd: number } | null,
  source: DeltaSource,
  out: { readonly fd: number },
  onWritten?: (bytes: number) => void,
): Promise<PatchResult> {
  const basisLength = basis ? fstatSync(basis.fd).size : 0;
  const decoder = new DeltaDecoder();
  const writer = new PatchWriter(out, basis, onWritten);
  let checked = false;
  for await (const chunk of chunksOf(source)) {
    const commands = decoder.push(chunk);
    if (!checked && decoder.format) {
      if (decoder.format === 'librsync' || decoder.basis) {
        checkBasisLength(decoder, basisLength);
        checked = true;
      }
    }
    for (const c of commands) {
      if (c.type === 'copy') {
        checkCopy(c.offset, c.length, basisLength);
        await writer.copy(c.offset, c.length);
      } else {
        await writer.literal(c.data);
      }
    }
  }
  await writer.flush();
  const hash = writer.hash();
  if (!resultMatches(decoder, writer.written, hash)) {
    let basisHash = createHasher().digest();
    if (basis) {
      const h = createHasher();
      for await (const c of readChunks(basis, true)) h.update(c);
      basisHash = h.digest();
    }
    failResult(decoder, writer.written, hash, basisHash);
  }
  return { length: writer.written, hash };
}

/** Applies a delta to `basisPath` (null: empty basis) and atomically writes `outPath`. */
export async function patchFile(
  basisPath: string | null,
  source: DeltaSource | string,
  outPath: string,
  options?: AtomicWriteOptions,
): Promise<PatchResult> {
  const basis = basisPath === null ? null : await open(basisPath, 'r');
  try {
    const delta = typeof source === 'string' ? readFileChunks(source, true) : source;
    return await writeAtomic(outPath, (fh) => patchInto(basis, delta, fh), options);
  } finally {
    await basis?.close();
  }
}

/** Writes a signature file atomically. */
export async function writeSignatureFile(
  sig: Signature,
  outPath: string,
  options?: AtomicWriteOptions,
): Promise<void> {
  const bytes = encodeSignature(sig);
  await writeAtomic(outPath, (fh) => writeChunks(fh, chunksOf(bytes)), options);
}

/** Writes the delta of `targetPath` against `sig` to `outPath` atomically; resolves to its size. */
export async function writeDeltaFile(
  sig: Signature,
  targetPath: string,
  outPath: string,
  options: DeltaOptions & AtomicWriteOptions = {},
): Promise<number> {
  const chunks = deltaFile(sig, targetPath, options);
  return writeAtomic(outPath, (fh) => writeChunks(fh, chunks), options);
}
