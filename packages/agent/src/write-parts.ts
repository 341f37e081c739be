import { open } from 'node:fs/promises';
import {
  createHasher,
  type DeltaFormat,
  decodeSignature,
  deltaStream,
  hashToHex,
  type Signature,
} from '@mimic/delta';
import type { WriteOp } from '@mimic/wire';

/** Bytes of file content or delta carried by one write message. */
export const PART_BYTES = 1024 * 1024;

export interface WriteSource {
  abs: string;
  path: string;
  mode: number;
  mtimeMs: number;
  size: number;
  hash: string;
  /** Signature of the version the mirror holds, and that version's hash: send a delta. */
  base?: { hash: string; signature: Uint8Array | Signature };
}

const DELTA_FORMAT: DeltaFormat = 'mimic';

async function* fileChunks(
  abs: string,
  onDone: (torn: boolean, length: number, hash: string) => void,
): AsyncGenerator<Uint8Array> {
  const fh = await open(abs, 'r');
  try {
    const before = await fh.stat();
    const hasher = createHasher();
    let pos = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(PART_BYTES);
      const { bytesRead } = await fh.read(buf, 0, PART_BYTES, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const chunk = buf.subarray(0, bytesRead);
      hasher.update(chunk);
      yield chunk;
    }
    const after = await fh.stat();
    const torn =
      after.size !== before.size ||
      after.mtimeMs !== before.mtimeMs ||
      after.ctimeMs !== before.ctimeMs ||
      pos !== after.size;
    onDone(torn, pos, hashToHex(hasher.digest()));
  } finally {
    await fh.close();
  }
}

/**
 * The write op's parts for one file, read now: whole content, or a delta against the base the
 * mirror holds. Parts are at most PART_BYTES of data. The last part carries the size and hash
 * of what was actually read (it may be newer than the journal's), or `abort` when the file
 * changed while it was read: the mirror then keeps its old copy and a later op brings the new one.
 */
export async function* writeParts(src: WriteSource): AsyncGenerator<WriteOp> {
  let result = { torn: false, length: 0, hash: src.hash };
  const chunks = fileChunks(src.abs, (torn, length, hash) => {
    result = { torn, length, hash };
  });
  const base = src.base;
  const sig = base
    ? base.signature instanceof Uint8Array
      ? decodeSignature(base.signature)
      : base.signature
    : null;
  const source = sig ? deltaStream(sig, chunks, { format: DELTA_FORMAT }) : chunks;
  const head = {
    kind: 'write' as const,
    path: src.path,
    mode: src.mode,
    mtimeMs: src.mtimeMs,
    size: src.size,
    hash: src.hash,
    encoding: sig ? ('delta' as const) : ('full' as const),
    ...(base && sig ? { baseHash: base.hash } : {}),
  };
  let part = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const take = (): Uint8Array => {
    const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return data;
  };
  for await (const chunk of source) {
    for (let o = 0; o < chunk.length; ) {
      const n = Math.min(PART_BYTES - pendingBytes, chunk.length - o);
      pending.push(chunk.subarray(o, o + n));
      pendingBytes += n;
      o += n;
      if (pendingBytes === PART_BYTES) yield { ...head, part: part++, last: false, data: take() };
    }
  }
  const last: WriteOp = { ...head, size: result.length, hash: result.hash, part, last: true, data: take() };
  if (result.torn) last.abort = true;
  yield last;
}
