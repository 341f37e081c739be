import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { JOURNAL_KEEP_MIN_ROWS, journalKeepFrom } from './journal-retention.js';

describe('journalKeepFrom', () => {
  test('keeps what the slowest mirror still needs', () => {
    expect(journalKeepFrom(100_000, [50_000, 70_000], 1_000_000)).toBe(50_001);
  });

  test('keeps the newest rows even when every mirror has them', () => {
    expect(journalKeepFrom(100_000, [100_000], 1_000_000)).toBe(100_001 - JOURNAL_KEEP_MIN_ROWS);
  });

  test('never keeps more than the bound', () => {
    expect(journalKeepFrom(100_000, [10], 500)).toBe(99_501);
  });

  test('is within bounds for any input', () => {
    fc.assert(
      fc.property(
        fc.nat(10_000_000),
        fc.array(fc.nat(10_000_000), { maxLength: 5 }),
        fc.integer({ min: 1, max: 2_000_000 }),
        (last, acked, keep) => {
          const acks = acked.map((a) => Math.min(a, last));
          const from = journalKeepFrom(last, acks, keep);
          expect(from).toBeGreaterThanOrEqual(1);
          expect(from).toBeLessThanOrEqual(last + 1);
          // Never more than `keep` rows, never fewer than the newest min(KEEP_MIN, keep)...
          expect(last + 1 - from).toBeLessThanOrEqual(keep);
          expect(last + 1 - from).toBeGreaterThanOrEqual(Math.min(JOURNAL_KEEP_MIN_ROWS, keep, last));
          // ...and every unacknowledged row while the bound allows.
          for (const a of acks) if (last - a <= keep) expect(from).toBeLessThanOrEqual(a + 1);
        },
      ),
    );
  });
});
