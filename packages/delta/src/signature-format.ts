import { checkBlockSize } from './block-size.js';
import { DeltaError } from './errors.js';
import { blockCount, type Signature } from './signature.js';

/**
 * Signature file, big-endian:
 *   magic "MIMS" | version u8 (1) | strong hash bytes u8 (8) | reserved u16 (0)
 *   block size u32 | file length u64 | file xxh64 u64
 *   then per block: weak key u32 | strong xxh64 u64
 */
export const SIGNATURE_MAGIC = 0x4d494d53;
export const SIGNATURE_VERSION = 1;
const HEADER_BYTES = 28;
const BLOCK_BYTES = 12;

export function encodeSignature(sig: Signature): Uint8Array {
  const count = sig.weak.length;
  const out = new Uint8Array(HEADER_BYTES + count * BLOCK_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, SIGNATURE_MAGIC);
  view.setUint8(4, SIGNATURE_VERSION);
  view.setUint8(5, 8);
  view.setUint32(8, sig.blockSize);
  view.setBigUint64(12, BigInt(sig.fileLength));
  view.setBigUint64(20, sig.fileHash);
  let o = HEADER_BYTES;
  for (let i = 0; i < count; i++, o += BLOCK_BYTES) {
    view.setUint32(o, sig.weak[i]!);
    view.setBigUint64(o + 4, sig.strong[i]!);
  }
  return out;
}

export function decodeSignature(bytes: Uint8Array): Signature {
  if (bytes.length < 4)
    throw new DeltaError('ERR_TRUNCATED', `signature is ${bytes.length} bytes, too short`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== SIGNATURE_MAGIC)
    throw new DeltaError('ERR_BAD_SIGNATURE', 'not a mimic signature (bad magic)');
  if (bytes.length < HEADER_BYTES) throw new DeltaError('ERR_TRUNCATED', 'signature header is truncated');
  const version = view.getUint8(4);
  if (version !== SIGNATURE_VERSION) {
    throw new DeltaError('ERR_UNSUPPORTED_VERSION', `signature format version ${version} is not supported`);
  }
  if (view.getUint8(5) !== 8 || view.getUint16(6) !== 0) {
    throw new DeltaError('ERR_BAD_SIGNATURE', 'signature header has unknown hash settings');
  }
  const blockSize = view.getUint32(8);
  try {
    checkBlockSize(blockSize);
  } catch {
    throw new DeltaError('ERR_BAD_SIGNATURE', `signature block size ${blockSize} is out of range`);
  }
  const fileLength = Number(view.getBigUint64(12));
  if (!Number.isSafeInteger(fileLength))
    throw new DeltaError('ERR_BAD_SIGNATURE', 'signature file length is out of range');
  const count = blockCount(fileLength, blockSize);
  const expected = HEADER_BYTES + count * BLOCK_BYTES;
  if (bytes.length < expected) {
    throw new DeltaError('ERR_TRUNCATED', `signature is truncated: ${bytes.length} of ${expected} bytes`);
  }
  if (bytes.length > expected) {
    throw new DeltaError(
      'ERR_BAD_SIGNATURE',
      `signature has ${bytes.length - expected} unexpected trailing bytes`,
    );
  }
  const weak = new Uint32Array(count);
  const strong = new BigUint64Array(count);
  let o = HEADER_BYTES;
  for (let i = 0; i < count; i++, o += BLOCK_BYTES) {
    weak[i] = view.getUint32(o);
    strong[i] = view.getBigUint64(o + 4);
  }
  return { blockSize, fileLength, fileHash: view.getBigUint64(20), weak, strong };
}
