import { type HelloMessage, makeHello, type Role } from '@mimic/wire';
import { describe, expect, it } from 'vitest';
import { Handshake } from './handshake.js';

const epoch = { term: 1, node: 'p1' };
const helloOf = (nodeId: string, role: Role) => (nonce: Uint8Array) =>
  makeHello({ nodeId, role, epoch, appliedSeq: 0, nonce });
const pair = (a: Uint8Array | null, b: Uint8Array | null) => ({
  primary: new Handshake(a, 'p1', helloOf('p1', 'primary')),
  mirror: new Handshake(b, 'm1', helloOf('m1', 'mirror')),
});
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'no error';
};

describe('the handshake', () => {
  it('without a token: each hello is enough, and a second one is out of turn', () => {
    const { primary, mirror } = pair(null, null);
    expect(mirror.receive(primary.hello(), 'primary')).toBe('done');
    expect(primary.receive(mirror.hello())).toBe('done');
    expect(primary.peer?.nodeId).toBe('m1');
    expect(codeOf(() => primary.receive(mirror.hello()))).toBe('ERR_PROTOCOL');
  });

  it('with the same token each side proves it over the other nonce', () => {
    const token = Buffer.alloc(32, 7);
    const { primary, mirror } = pair(token, token);
    expect(mirror.receive(primary.hello())).toBe('proof');
    expect(primary.receive(mirror.hello())).toBe('proof');
    expect(primary.receive(mirror.proof())).toBe('done');
    expect(mirror.receive(primary.proof())).toBe('done');
  });

  it('refuses a wrong token, a missing proof, a wrong role and its own node id', () => {
    const { primary, mirror } = pair(Buffer.alloc(32, 1), Buffer.alloc(32, 2));
    mirror.receive(primary.hello());
    primary.receive(mirror.hello());
    expect(codeOf(() => primary.receive(mirror.proof()))).toBe('ERR_AUTH');
    const other = pair(Buffer.alloc(32, 1), null);
    other.primary.receive(other.mirror.hello());
    expect(codeOf(() => other.primary.receive(other.mirror.hello()))).toBe('ERR_AUTH');
    expect(
      codeOf(() => new Handshake(null, 'm2', helloOf('m2', 'mirror')).receive(mirror.hello(), 'primary')),
    ).toBe('ERR_ROLE');
    const self: HelloMessage = new Handshake(null, 'p1', helloOf('p1', 'primary')).hello();
    expect(codeOf(() => new Handshake(null, 'p1', helloOf('p1', 'primary')).receive(self))).not.toBe(
      'no error',
    );
    expect(
      codeOf(() =>
        new Handshake(null, 'x', helloOf('x', 'mirror')).receive({ type: 'auth', proof: new Uint8Array(32) }),
      ),
    ).toBe('ERR_PROTOCOL');
  });

  it('builds its hello once, around the nonce its proof is checked against', () => {
    let built = 0;
    const h = new Handshake(null, 'm1', (nonce) => {
      built++;
      return helloOf('m1', 'mirror')(nonce);
    });
    expect(built).toBe(0);
    expect(h.hello()).toBe(h.hello());
    expect(built).toBe(1);
    expect(h.hello().nonce).toHaveLength(32);
  });
});
