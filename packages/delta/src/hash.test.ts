import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contentHash, createHasher, hashToHex, strongHash } from './index.js';

/*
 * The one-call hash and the streaming hasher are the same xxh64 (seed 0): agents hash small files
 * in one call and large ones in pieces, and both sides must agree on every file's hash.
 */
describe('xxh64 in one call and in pieces', () => {
  it('agree for any bytes, however they are split', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 5000 }),
        fc.array(fc.nat(5000), { maxLength: 6 }),
        (bytes, cuts) => {
          const h = createHasher();
          let at = 0;
          for (const cut of [...cuts].sort((a, b) => a - b)) {
            const to = Math.min(cut, bytes.length);
            h.update(bytes.subarray(at, Math.max(at, to)));
            at = Math.max(at, to);
          }
          h.update(bytes.subarray(at));
          const streamed = h.digest();
          expect(streamed).toBe(strongHash(bytes));
          expect(contentHash(bytes)).toBe(hashToHex(streamed));
        },
      ),
    );
  });

  it('is xxh64 of the empty input for no bytes', () => {
    expect(hashToHex(strongHash(new Uint8Array(0)))).toBe('ef46db3751d8e999');
  });
});
