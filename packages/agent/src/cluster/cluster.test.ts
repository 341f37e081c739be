import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  chooseSuccessor,
  clusterKeys,
  type MemberValue,
  parseLeader,
  parseMember,
  parseTerm,
} from './cluster-keys.js';
import { LeaseClock } from './lease-clock.js';

const member = (id: string, seq: number, o: Partial<MemberValue> = {}): MemberValue => ({
  id,
  role: 'mirror',
  seq,
  term: 1,
  url: `ws://127.0.0.1:1/${id}`,
  priority: 0,
  nofailover: false,
  ...o,
});

describe('who takes over', () => {
  test('the most caught-up mirror, then the highest priority, then the lowest node id', () => {
    expect(chooseSuccessor([member('a', 5), member('b', 9)], 9, 100)?.id).toBe('b');
    expect(chooseSuccessor([member('a', 9), member('b', 9, { priority: 3 })], 9, 100)?.id).toBe('b');
    expect(chooseSuccessor([member('b', 9), member('a', 9)], 9, 100)?.id).toBe('a');
  });

  test('never a nofailover member, a primary, a fenced node, one that cannot serve, or one too far behind', () => {
    const all = [
      member('a', 100, { nofailover: true }),
      member('b', 100, { role: 'primary' }),
      member('c', 100, { role: 'fenced' }),
      member('d', 100, { url: null }),
      member('e', 10),
    ];
    expect(chooseSuccessor(all, 100, 50)).toBeNull();
    expect(chooseSuccessor(all, 100, 90)?.id).toBe('e');
  });

  test('every member computes the same winner, whatever order it reads them in', () => {
    const arb = fc.uniqueArray(
      fc.record({
        id: fc.stringMatching(/^[a-z]{1,4}$/),
        seq: fc.nat(50),
        priority: fc.integer({ min: -2, max: 2 }),
      }),
      { selector: (m) => m.id, minLength: 1, maxLength: 6 },
    );
    fc.assert(
      fc.property(arb, (ms) => {
        const list = ms.map((m) => member(m.id, m.seq, { priority: m.priority }));
        const a = chooseSuccessor(list, 50, 100);
        const b = chooseSuccessor([...list].reverse(), 50, 100);
        expect(a?.id).toBe(b?.id);
        expect(a?.seq).toBe(Math.max(...list.map((m) => m.seq)));
      }),
    );
  });
});

describe('cluster keys and values', () => {
  test('keys live under /mimic/<cluster>/; a bad cluster name is refused', () => {
    const k = clusterKeys('www');
    expect([k.leader, k.term, k.member('n1'), k.switchover]).toEqual([
      '/mimic/www/leader',
      '/mimic/www/term',
      '/mimic/www/members/n1',
      '/mimic/www/switchover',
    ]);
    expect(() => clusterKeys('a/b')).toThrow(/--cluster "a\/b": expected/);
  });

  test('values that are not what they should be are refused with the key named', () => {
    expect(parseLeader('k', '{"node":"n","term":3,"url":"ws://x"}')).toEqual({
      node: 'n',
      term: 3,
      url: 'ws://x',
    });
    expect(() => parseLeader('/mimic/www/leader', '{"node":"n"}')).toThrow(/\/mimic\/www\/leader: expected/);
    expect(() => parseMember('m', 'not json')).toThrow(/m: not JSON/);
    expect(() => parseMember('m', JSON.stringify({ ...member('a', 1), seq: -1 }))).toThrow(
      /expected a member/,
    );
    expect(parseTerm('t', null)).toBe(0);
    expect(parseTerm('t', '41')).toBe(41);
    expect(() => parseTerm('t', '4x')).toThrow(/expected a term number/);
  });
});

describe('the lease as its holder counts it', () => {
  test('valid until the send time of the last answered keepalive plus the TTL, less the margin', () => {
    let now = 1000;
    const clock = new LeaseClock(10, () => now);
    expect(clock.valid()).toBe(false);
    expect(clock.marginMs).toBe(2000);
    clock.answered(1000, 10);
    now = 8999;
    expect(clock.valid()).toBe(true);
    now = 9000;
    expect(clock.valid()).toBe(false);
    // An answer that took long counts from when its keepalive was sent, not when it came.
    clock.answered(5000, 10);
    now = 12_999;
    expect(clock.valid()).toBe(true);
    now = 13_000;
    expect(clock.valid()).toBe(false);
    // An older answer arriving late never shortens it; a TTL of 0 (expired in etcd) ends it.
    clock.answered(2000, 10);
    now = 12_000;
    expect(clock.valid()).toBe(true);
    clock.answered(12_000, 0);
    expect(clock.valid()).toBe(false);
    expect(clock.intervalMs).toBe(2000);
  });
});
