export { decode, type EncodeOptions, encode, encodePieces, maxWriteDataBytes } from './codec.js';
export { isWireError, WIRE_ERROR_CODES, WireError, type WireErrorCode } from './errors.js';
export { authProof, checkHello, type MakeHelloOptions, makeHello, verifyProof } from './handshake.js';
export {
  DEFAULT_LIMITS,
  MAX_PATH_BYTES,
  resolveLimits,
  type WireLimits,
  type WireLimitsOptions,
} from './limits.js';
export {
  type AckMessage,
  type AuthMessage,
  compareEpoch,
  type DeleteOp,
  type Epoch,
  type ErrorMessage,
  HASH_PATTERN,
  type HelloMessage,
  MAX_OPS_PER_MESSAGE,
  type ManifestEntry,
  type ManifestMessage,
  MESSAGE_TYPES,
  type Message,
  type MessageOf,
  type MessageType,
  type MetaOp,
  type MkdirOp,
  type NeedMessage,
  NODE_ID_PATTERN,
  NONCE_BYTES,
  OP_KINDS,
  type Op,
  type OpKind,
  type OpMessage,
  type OpsMessage,
  PROOF_BYTES,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  type ReconciledMessage,
  type RenameOp,
  type Role,
  type SymlinkOp,
  type WelcomeMessage,
  type WriteOp,
} from './messages.js';
export {
  checkSymlinkTarget,
  checkWirePath,
  isWirePath,
  MAX_SEGMENT_BYTES,
  RESERVED_SEGMENT,
} from './paths.js';
export { validateMessage } from './validate.js';
