import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { describeValue, WireError } from './errors.js';
import {
  type Epoch,
  type HelloMessage,
  type Message,
  NODE_ID_PATTERN,
  NONCE_BYTES,
  PROOF_BYTES,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  type Role,
} from './messages.js';
import { validateMessage } from './validate.js';

/**
 * The handshake, as each side runs it (@mimic/agent's link/handshake.ts is this state machine):
 *
 *   hello ──peer's hello ok, send auth──▶ proof ──peer's proof ok──▶ done ──(primary sends welcome)──▶ ops
 *
 * - Each side sends `hello` with a fresh 32-byte nonce (a primary on connect, a mirror when the
 *   primary's hello came, a probe only to a peer of a lower epoch).
 * - hello: the first message must be the peer's hello; `checkHello` refuses another
 *   protocol or version, an unexpected role, and a peer using our own node id. Then send `auth`
 *   with `authProof(token, peerHello.nonce, ownNodeId)`.
 * - proof: the next message must be `auth`; `verifyProof(token, ownNonce, peerNodeId, proof)`.
 *   A false result, or any other message, ends the connection with an `error`.
 * - done: the primary sends `welcome` to a mirror; from then on the op stream runs.
 *
 * Each proof covers the verifier's own fresh nonce, so it cannot be replayed on another connection,
 * and the prover's node id, so a proof cannot be passed off under another id. Reflecting a node's
 * challenge back at it would need that node's own id, which `checkHello` refuses.
 */

/** Domain label, so the token's MACs here can never be confused with MACs made for other uses. */
const AUTH_LABEL = Buffer.from('mimic-auth-v1\0', 'utf8');

export interface MakeHelloOptions {
  nodeId: string;
  role: Role;
  epoch: Epoch;
  appliedSeq: number;
  listenUrl?: string;
  /** A mirror with nothing applied and an empty folder (see `HelloMessage.fresh`). */
  fresh?: boolean;
  /** The folder the sender serves or holds (see `HelloMessage.folder`). */
  folder?: string;
  /** Codecs the sender decodes, and whether it asks for compression (see `HelloMessage.codecs`). */
  codecs?: readonly string[];
  compress?: boolean;
  /** 32 bytes; a fresh random nonce when left out. Keep it to verify the peer's proof. */
  nonce?: Uint8Array;
}

/**
 * Builds and validates this node's hello for the current protocol version. Throws `WireError`
 * (`ERR_BAD_MESSAGE`) when an option is malformed.
 */
export function makeHello(options: MakeHelloOptions): HelloMessage {
  const hello: HelloMessage = {
    type: 'hello',
    protocol: PROTOCOL_NAME,
    version: PROTOCOL_VERSION,
    nodeId: options.nodeId,
    role: options.role,
    epoch: { term: options.epoch.term, node: options.epoch.node },
    appliedSeq: options.appliedSeq,
    nonce: options.nonce ?? new Uint8Array(randomBytes(NONCE_BYTES)),
  };
  if (options.listenUrl !== undefined) hello.listenUrl = options.listenUrl;
  if (options.fresh) hello.fresh = true;
  if (options.folder !== undefined) hello.folder = options.folder;
  if (options.codecs !== undefined) hello.codecs = [...options.codecs];
  if (options.compress) hello.compress = true;
  validateMessage(hello);
  return hello;
}

/**
 * Checks that `msg`, the first message from a peer, is an acceptable hello and returns it.
 * Throws `WireError`: `ERR_PROTOCOL_VERSION` when it names another protocol or version,
 * `ERR_BAD_MESSAGE` when it is not a hello, is malformed, has a role outside `expectedRole`, or
 * uses `ownNodeId`.
 */
export function checkHello(
  msg: Message,
  expectedRole?: Role | readonly Role[],
  ownNodeId?: string,
): HelloMessage {
  if (msg.type !== 'hello') {
    throw new WireError(
      'ERR_BAD_MESSAGE',
      `message.type: expected 'hello' first, got ${describeValue(msg.type)}`,
    );
  }
  if (msg.protocol !== PROTOCOL_NAME) {
    throw new WireError('ERR_PROTOCOL_VERSION', `hello.protocol: expected '${PROTOCOL_NAME}'`);
  }
  if (msg.version !== PROTOCOL_VERSION) {
    throw new WireError(
      'ERR_PROTOCOL_VERSION',
      `hello.version: expected ${PROTOCOL_VERSION}, got ${String(msg.version)}`,
    );
  }
  validateMessage(msg);
  if (expectedRole !== undefined) {
    const roles: readonly Role[] = typeof expectedRole === 'string' ? [expectedRole] : expectedRole;
    if (!roles.includes(msg.role)) {
      throw new WireError('ERR_BAD_MESSAGE', `hello.role: expected ${roles.join(' or ')}, got ${msg.role}`);
    }
  }
  if (ownNodeId !== undefined && msg.nodeId === ownNodeId) {
    throw new WireError('ERR_BAD_MESSAGE', `hello.nodeId: the peer uses our own node id '${ownNodeId}'`);
  }
  return msg;
}

/**
 * The proof this node sends in `auth`: HMAC-SHA256 keyed by the shared `token`, over the label
 * `mimic-auth-v1\0`, the peer's 32-byte nonce, then `ownNodeId` in UTF-8. Throws `TypeError` for an
 * empty token, a nonce of the wrong length or a malformed node id.
 */
export function authProof(token: Uint8Array, peerNonce: Uint8Array, ownNodeId: string): Uint8Array {
  if (!(token instanceof Uint8Array) || token.length === 0) {
    throw new TypeError('authProof: token must be a non-empty Uint8Array');
  }
  if (!(peerNonce instanceof Uint8Array) || peerNonce.length !== NONCE_BYTES) {
    throw new TypeError(`authProof: nonce must be ${NONCE_BYTES} bytes`);
  }
  if (typeof ownNodeId !== 'string' || !NODE_ID_PATTERN.test(ownNodeId)) {
    throw new TypeError('authProof: node id must be 1 to 64 characters of [A-Za-z0-9._-]');
  }
  const mac = createHmac('sha256', token)
    .update(AUTH_LABEL)
    .update(peerNonce)
    .update(ownNodeId, 'utf8')
    .digest();
  return new Uint8Array(mac.buffer, mac.byteOffset, mac.length);
}

/**
 * True when `proof` is what a peer holding `token` and named `peerNodeId` must send in answer to
 * our nonce `ownNonce`. Compares in constant time; a proof of the wrong length is false. Throws
 * `TypeError` on the same bad arguments as {@link authProof}.
 */
export function verifyProof(
  token: Uint8Array,
  ownNonce: Uint8Array,
  peerNodeId: string,
  proof: Uint8Array,
): boolean {
  const expected = authProof(token, ownNonce, peerNodeId);
  if (!(proof instanceof Uint8Array) || proof.length !== PROOF_BYTES) return false;
  return timingSafeEqual(expected, proof);
}
