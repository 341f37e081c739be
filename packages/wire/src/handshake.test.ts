import { describe, expect, it } from 'vitest';
import { decode, encode } from './codec.js';
import { WireError } from './errors.js';
import { authProof, checkHello, makeHello, verifyProof } from './handshake.js';
import { type HelloMessage, type Message, PROTOCOL_VERSION } from './messages.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof WireError) return err.code;
    throw err;
  }
  return 'no error';
}

const token = new TextEncoder().encode('shared secret token');
const epoch = { term: 1, node: 'primary' };

function helloOf(nodeId: string, role: HelloMessage['role']): HelloMessage {
  return makeHello({ nodeId, role, epoch, appliedSeq: 0, listenUrl: 'ws://localhost:7070' });
}

describe('makeHello', () => {
  it('builds a valid hello with a fresh 32-byte nonce', () => {
    const a = helloOf('primary', 'primary');
    const b = helloOf('primary', 'primary');
    expect(a).toMatchObject({
      type: 'hello',
      protocol: 'mimic',
      version: PROTOCOL_VERSION,
      nodeId: 'primary',
    });
    expect(a.nonce.length).toBe(32);
    expect(a.nonce).not.toEqual(b.nonce);
    expect(decode(encode(a))).toEqual(a);
  });

  it('uses a given nonce and leaves out an absent listenUrl', () => {
    const nonce = new Uint8Array(32).fill(7);
    const hello = makeHello({ nodeId: 'm1', role: 'mirror', epoch, appliedSeq: 5, nonce });
    expect(hello.nonce).toBe(nonce);
    expect('listenUrl' in hello).toBe(false);
  });

  it('refuses malformed options', () => {
    expect(codeOf(() => makeHello({ nodeId: 'bad id', role: 'mirror', epoch, appliedSeq: 0 }))).toBe(
      'ERR_BAD_MESSAGE',
    );
    const nonce = new Uint8Array(16);
    expect(codeOf(() => makeHello({ nodeId: 'm1', role: 'mirror', epoch, appliedSeq: 0, nonce }))).toBe(
      'ERR_BAD_MESSAGE',
    );
  });
});

describe('checkHello', () => {
  const hello = helloOf('mirror-1', 'mirror');

  it('returns an acceptable hello', () => {
    expect(checkHello(hello)).toBe(hello);
    expect(checkHello(hello, 'mirror')).toBe(hello);
    expect(checkHello(hello, ['mirror', 'fenced'], 'primary')).toBe(hello);
  });

  it('refuses another version or protocol with ERR_PROTOCOL_VERSION', () => {
    const next = { ...hello, version: PROTOCOL_VERSION + 1 };
    expect(codeOf(() => checkHello(next))).toBe('ERR_PROTOCOL_VERSION');
    const other = { ...hello, protocol: 'other' } as unknown as Message;
    expect(codeOf(() => checkHello(other))).toBe('ERR_PROTOCOL_VERSION');
  });

  it('refuses a first message that is not a hello', () => {
    expect(codeOf(() => checkHello({ type: 'ack', epoch, seq: 0 }))).toBe('ERR_BAD_MESSAGE');
  });

  it('refuses an unexpected role and a peer using our own id', () => {
    expect(codeOf(() => checkHello(hello, 'primary'))).toBe('ERR_BAD_MESSAGE');
    expect(codeOf(() => checkHello(hello, ['primary', 'fenced']))).toBe('ERR_BAD_MESSAGE');
    expect(codeOf(() => checkHello(hello, undefined, 'mirror-1'))).toBe('ERR_BAD_MESSAGE');
  });

  it('refuses a hello that is malformed', () => {
    const bad = { ...hello, appliedSeq: -1 };
    expect(codeOf(() => checkHello(bad))).toBe('ERR_BAD_MESSAGE');
  });
});

describe('authProof and verifyProof', () => {
  const nonce = new Uint8Array(32).fill(1);

  it('gives a 32-byte proof that depends on token, nonce and node id', () => {
    const proof = authProof(token, nonce, 'mirror-1');
    expect(proof.length).toBe(32);
    expect(authProof(token, nonce, 'mirror-1')).toEqual(proof);
    expect(authProof(Uint8Array.of(1), nonce, 'mirror-1')).not.toEqual(proof);
    expect(authProof(token, new Uint8Array(32).fill(2), 'mirror-1')).not.toEqual(proof);
    expect(authProof(token, nonce, 'mirror-2')).not.toEqual(proof);
  });

  it('verifies only the matching proof', () => {
    const proof = authProof(token, nonce, 'mirror-1');
    expect(verifyProof(token, nonce, 'mirror-1', proof)).toBe(true);
    expect(verifyProof(token, nonce, 'mirror-2', proof)).toBe(false);
    expect(verifyProof(Uint8Array.of(9), nonce, 'mirror-1', proof)).toBe(false);
    const flipped = Uint8Array.from(proof);
    flipped[31] = (flipped[31] ?? 0) ^ 1;
    expect(verifyProof(token, nonce, 'mirror-1', flipped)).toBe(false);
    expect(verifyProof(token, nonce, 'mirror-1', proof.subarray(0, 31))).toBe(false);
    expect(verifyProof(token, nonce, 'mirror-1', new Uint8Array(0))).toBe(false);
  });

  it('throws TypeError for an empty token, a short nonce or a bad node id', () => {
    expect(() => authProof(new Uint8Array(0), nonce, 'm')).toThrow(TypeError);
    expect(() => authProof(token, new Uint8Array(31), 'm')).toThrow(TypeError);
    expect(() => authProof(token, nonce, 'bad id')).toThrow(TypeError);
  });

  it('runs a whole handshake over the codec', () => {
    const primary = helloOf('primary', 'primary');
    const mirror = helloOf('mirror-1', 'mirror');
    // Each side receives the other's hello and answers with its proof.
    const atMirror = checkHello(decode(encode(primary)), 'primary', 'mirror-1');
    const atPrimary = checkHello(decode(encode(mirror)), 'mirror', 'primary');
    const fromMirror = decode(encode({ type: 'auth', proof: authProof(token, atMirror.nonce, 'mirror-1') }));
    const fromPrimary = decode(encode({ type: 'auth', proof: authProof(token, atPrimary.nonce, 'primary') }));
    if (fromMirror.type !== 'auth' || fromPrimary.type !== 'auth') throw new Error('expected auth');
    expect(verifyProof(token, primary.nonce, atPrimary.nodeId, fromMirror.proof)).toBe(true);
    expect(verifyProof(token, mirror.nonce, atMirror.nodeId, fromPrimary.proof)).toBe(true);
    // A proof made for one connection's nonce fails on another.
    expect(verifyProof(token, helloOf('primary', 'primary').nonce, 'mirror-1', fromMirror.proof)).toBe(false);
  });
});
