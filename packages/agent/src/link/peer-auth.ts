import { randomBytes } from 'node:crypto';
import { type AuthMessage, authProof, type HelloMessage, verifyProof } from '@mimic/wire';

/*
 * Shared-token authentication on top of the hello exchange. Each side's hello carries a
 * fresh nonce; after reading the peer's hello, each side sends `auth` with
 * HMAC-SHA256(token, peer's nonce, own node id) and checks the peer's proof against its own
 * nonce. The token never crosses the wire, and a proof cannot be replayed on another
 * connection (the nonce differs). Without a token, `required` is false and no auth is sent.
 */
export class PeerAuth {
  /** The fresh nonce our hello carries; the peer's proof must cover it. */
  readonly nonce: Uint8Array;
  readonly #token: Uint8Array | null;
  readonly #ownNodeId: string;

  constructor(token: Uint8Array | null, ownNodeId: string, nonce: Uint8Array = randomBytes(32)) {
    this.#token = token;
    this.#ownNodeId = ownNodeId;
    this.nonce = nonce;
  }

  get required(): boolean {
    return this.#token !== null;
  }

  /** Our answer to the peer's hello. */
  proofFor(peer: HelloMessage): AuthMessage {
    return { type: 'auth', proof: authProof(this.#token!, peer.nonce, this.#ownNodeId) };
  }

  /** Whether the peer's proof shows it holds the same token. */
  verify(peer: HelloMessage, msg: AuthMessage): boolean {
    return this.#token !== null && verifyProof(this.#token, this.nonce, peer.nodeId, msg.proof);
  }
}
