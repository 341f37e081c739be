export { defaultBlockSize, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE } from './block-size.js';
export { type DeltaOptions, delta, patch } from './buffer-api.js';
export { type DeltaCommand, DeltaDecoder } from './delta-decoder.js';
export { type DeltaFormat, LIBRSYNC_DELTA_MAGIC, MIMIC_DELTA_MAGIC } from './delta-format.js';
export { DeltaMatcher, type DeltaSink, type TargetSummary } from './delta-matcher.js';
export { DeltaError, type DeltaErrorCode, isDeltaError } from './errors.js';
export {
  type DeltaSource,
  deltaFile,
  deltaStream,
  type PatchResult,
  patchFile,
  patchInto,
  signatureFile,
  signatureStream,
  writeDeltaFile,
  writeSignatureFile,
} from './file-api.js';
export {
  type AtomicWriteOptions,
  IO_CHUNK,
  readChunks,
  readFileChunks,
  tempPathFor,
  writeAllSync,
  writeAtomic,
  yieldToLoop,
} from './file-io.js';
export { contentHash, createHasher, hashToHex, hexToHash, type StreamHasher, strongHash } from './hash.js';
export { type Signature, SignatureBuilder, type SignatureOptions, signature } from './signature.js';
export { decodeSignature, encodeSignature, SIGNATURE_MAGIC } from './signature-format.js';
