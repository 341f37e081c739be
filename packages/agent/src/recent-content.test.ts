import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecentContent } from './recent-content.js';

describe('RecentContent', () => {
  it('gives content back only for the version it holds', () => {
    const c = new RecentContent(100);
    c.put('a', 'h1', new Uint8Array([1, 2, 3]));
    expect(c.take('a', 'h2')).toBeUndefined();
    expect(c.take('a', 'h1')).toEqual(new Uint8Array([1, 2, 3]));
    expect(c.take('a', 'h1')).toBeUndefined(); // taken
    c.put('a', 'h1', new Uint8Array([1, 2, 3]));
    c.put('a', 'h2', new Uint8Array([4]));
    expect(c.take('a', 'h1')).toBeUndefined(); // replaced by the newer version
    expect(c.bytes).toBe(1);
    c.delete('a');
    expect(c.take('a', 'h2')).toBeUndefined();
    expect(c.bytes).toBe(0);
  });

  it('never holds more than its bound, and keeps what it holds when full', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 40 })), {
          maxLength: 200,
        }),
        (puts) => {
          const c = new RecentContent(64);
          let i = 0;
          for (const [p, size] of puts) {
            c.put(`f${p}`, `h${i++}`, new Uint8Array(size));
            expect(c.bytes).toBeLessThanOrEqual(64);
          }
          // The newest put is held exactly when it fitted beside what was held before it.
          if (puts.length > 0) {
            const [p, size] = puts[puts.length - 1]!;
            const before = c.bytes;
            const got = c.take(`f${p}`, `h${puts.length - 1}`);
            if (got) expect(got.length).toBe(size);
            expect(c.bytes).toBe(got ? before - size : before);
          }
        },
      ),
    );
  });
});
