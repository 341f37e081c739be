import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareEpoch, type Epoch } from './messages.js';
import { epochArb } from './test-arbitraries.js';

describe('compareEpoch', () => {
  it('orders by term first, then by node id', () => {
    expect(compareEpoch({ term: 1, node: 'z' }, { term: 2, node: 'a' })).toBe(-1);
    expect(compareEpoch({ term: 2, node: 'a' }, { term: 1, node: 'z' })).toBe(1);
    expect(compareEpoch({ term: 2, node: 'a' }, { term: 2, node: 'b' })).toBe(-1);
    expect(compareEpoch({ term: 2, node: 'b' }, { term: 2, node: 'a' })).toBe(1);
    expect(compareEpoch({ term: 2, node: 'a' }, { term: 2, node: 'a' })).toBe(0);
  });

  it('compares node ids by plain code unit order, not locale', () => {
    expect(compareEpoch({ term: 1, node: 'B' }, { term: 1, node: 'a' })).toBe(-1);
    expect(compareEpoch({ term: 1, node: 'node-10' }, { term: 1, node: 'node-9' })).toBe(-1);
  });

  it('is antisymmetric and zero only for equal epochs', () => {
    fc.assert(
      fc.property(epochArb, epochArb, (a, b) => {
        expect(compareEpoch(a, b)).toBe(-compareEpoch(b, a) || 0);
        expect(compareEpoch(a, b) === 0).toBe(a.term === b.term && a.node === b.node);
      }),
    );
  });

  it('is a total order: sorting agrees with every pairwise comparison', () => {
    fc.assert(
      fc.property(fc.array(epochArb, { maxLength: 20 }), (epochs) => {
        const sorted: Epoch[] = [...epochs].sort(compareEpoch);
        for (let i = 0; i + 1 < sorted.length; i++) {
          expect(compareEpoch(sorted[i] as Epoch, sorted[i + 1] as Epoch)).toBeLessThanOrEqual(0);
        }
      }),
    );
  });
});
