import { randomBytes } from 'node:crypto';
import { type AuthMessage, checkHello, type HelloMessage, type Message, type Role } from '@mimic/wire';
import { AgentError } from '../node/errors.js';
import { PeerAuth } from './peer-auth.js';

/*
 * The hello and token proof every connection between two nodes opens with, as one state machine
 * used by the primary's per-mirror session, the mirror's connection and the peer probe:
 *
 *   hello ──peer's hello, checked──▶ proof ──peer's proof of the token──▶ done
 *                         └──────────── (no token) ──────────────────────▶ done
 *
 * Who sends first differs by side (a primary greets on connect; a mirror answers a primary's
 * hello; a probe speaks only to a peer of a lower epoch), so sending stays with the caller:
 * `hello()` is ours, carrying the nonce the peer's proof must cover, and `proof()` is our answer
 * to the peer's hello. What arrives goes through `receive`, which refuses anything out of turn.
 */
export type HandshakeState = 'hello' | 'proof' | 'done';

export class Handshake {
  readonly #auth: PeerAuth;
  readonly #nodeId: string;
  readonly #build: (nonce: Uint8Array, peer: HelloMessage | null) => HelloMessage;
  #ours: HelloMessage | null = null;
  #state: HandshakeState = 'hello';
  #peer: HelloMessage | null = null;

  /**
   * `ours` builds this node's hello around the nonce, when it is first asked for (a mirror's says
   * what it applied as of the moment it answers, and answers the codecs the peer's hello listed);
   * `token` null: no proof either way.
   */
  constructor(
    token: Uint8Array | null,
    nodeId: string,
    ours: (nonce: Uint8Array, peer: HelloMessage | null) => HelloMessage,
  ) {
    this.#nodeId = nodeId;
    this.#build = ours;
    this.#auth = new PeerAuth(token, nodeId, randomBytes(32));
  }

  get state(): HandshakeState {
    return this.#state;
  }

  /** Whether a token is proved each way. */
  get authenticated(): boolean {
    return this.#auth.required;
  }

  /** Our hello. */
  hello(): HelloMessage {
    this.#ours ??= this.#build(this.#auth.nonce, this.#peer);
    return this.#ours;
  }

  /** The peer's hello, once it came. */
  get peer(): HelloMessage | null {
    return this.#peer;
  }

  /** Our proof of the token over the peer's nonce (only with a token, after the peer's hello). */
  proof(): AuthMessage {
    if (!this.#peer || !this.#auth.required) throw new AgentError('ERR_INTERNAL', 'no proof to give');
    return this.#auth.proofFor(this.#peer);
  }

  /**
   * Takes one message of the handshake. The first must be a valid hello (of `role` when given),
   * from another node than this one (ERR_PROTOCOL, ERR_ROLE, or the wire's ERR_BAD_MESSAGE);
   * with a token the next must prove it (ERR_AUTH). Returns the state it moved to.
   */
  receive(msg: Message, role?: Role): HandshakeState {
    if (this.#state === 'hello') {
      if (msg.type !== 'hello') throw new AgentError('ERR_PROTOCOL', `expected hello, got ${msg.type}`);
      const hello = checkHello(msg, undefined, this.#nodeId);
      if (role && hello.role !== role)
        throw new AgentError('ERR_ROLE', `${hello.nodeId} is a ${hello.role}, not a ${role}`);
      this.#peer = hello;
      this.#state = this.#auth.required ? 'proof' : 'done';
      return this.#state;
    }
    if (this.#state === 'proof') {
      if (msg.type !== 'auth')
        throw new AgentError(
          'ERR_AUTH',
          `${this.#peer!.nodeId} sent ${msg.type} instead of its proof of the token`,
        );
      if (!this.#auth.verify(this.#peer!, msg))
        throw new AgentError('ERR_AUTH', `${this.#peer!.nodeId} did not prove it holds the token`);
      this.#state = 'done';
      return this.#state;
    }
    if (msg.type === 'hello') throw new AgentError('ERR_PROTOCOL', 'a second hello');
    throw new AgentError('ERR_INTERNAL', `${msg.type} is not part of the handshake`);
  }
}
