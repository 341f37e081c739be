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

  it('makes the reader wait for room only while content is being taken', async () => {
    const c = new RecentContent(10, { takingMs: 80, abandonedMs: 200 });
    c.put('a', 'h', new Uint8Array(6));
    c.put('b', 'h', new Uint8Array(4));
    // Nothing taken yet: no one to wait for, and nothing is dropped for it.
    expect(c.full(5)).toBe(false);
    let t = performance.now();
    await c.room(5, 5000);
    expect(performance.now() - t).toBeLessThan(1000);
    expect(c.bytes).toBe(10);
    // A sender is taking: the wait ends when it makes room.
    expect(c.take('b', 'h')).toBeDefined();
    expect(c.full(5)).toBe(true);
    expect(c.full(4)).toBe(false);
    let woke = false;
    const waiting = c.room(5, 5000).then(() => {
      woke = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(woke).toBe(false); // 6 held + 5 > 10
    expect(c.take('a', 'h')).toBeDefined();
    await waiting;
    expect(c.fits(5)).toBe(true);
    // A sender that pauses (its mirror syncing, its window full) keeps what is held for it:
    // each wait ends after the time given, and the content stays.
    c.put('a', 'h', new Uint8Array(10));
    t = performance.now();
    await c.room(1, 30);
    expect(performance.now() - t).toBeGreaterThanOrEqual(25);
    expect(c.bytes).toBe(10);
    // One that stopped taking holds the reader up no longer (takingMs), and what it left
    // behind is dropped once it is abandoned (abandonedMs), so new content is kept again.
    await new Promise((r) => setTimeout(r, 100));
    expect(c.full(1)).toBe(false);
    expect(c.bytes).toBe(10);
    await new Promise((r) => setTimeout(r, 120));
    expect(c.full(1)).toBe(false);
    expect(c.bytes).toBe(0);
    expect(c.take('a', 'h')).toBeUndefined();
    // A slow sender, still taking during the wait, keeps what is held for it.
    c.put('p', 'h', new Uint8Array(1));
    c.put('q', 'h', new Uint8Array(1));
    c.put('r', 'h', new Uint8Array(8));
    expect(c.take('p', 'h')).toBeDefined();
    const slow = c.room(2, 40);
    await new Promise((r) => setTimeout(r, 10));
    expect(c.take('q', 'h')).toBeDefined(); // 8 held: not yet room enough to resume
    await slow;
    expect(c.bytes).toBe(8);
    expect(c.take('r', 'h')).toBeDefined();
  });

  it('drops content no sender takes while others are taken, oldest first', async () => {
    const c = new RecentContent(10, { takingMs: 1000, abandonedMs: 60 });
    c.put('stale', 'h', new Uint8Array(6)); // a version no mirror asks for
    c.put('x', 'h', new Uint8Array(4));
    expect(c.take('x', 'h')).toBeDefined(); // a sender is taking
    c.put('y', 'h', new Uint8Array(4));
    expect(c.full(4)).toBe(true); // 'stale' is young: worth waiting for
    expect(c.bytes).toBe(10);
    await new Promise((r) => setTimeout(r, 80));
    expect(c.take('y', 'h')).toBeDefined(); // still taking, but never 'stale'
    c.put('z', 'h', new Uint8Array(4));
    // Room is wanted: 'stale' has been held past abandonedMs and goes; 'z', newer, stays.
    expect(c.full(4)).toBe(false);
    expect(c.bytes).toBe(4);
    expect(c.take('stale', 'h')).toBeUndefined();
    expect(c.take('z', 'h')).toBeDefined();
  });

  it('keeps what it holds for the first sender, however long it waits', async () => {
    const c = new RecentContent(10, { takingMs: 10, abandonedMs: 10 });
    c.put('a', 'h', new Uint8Array(10));
    await new Promise((r) => setTimeout(r, 30));
    expect(c.full(1)).toBe(false); // nobody to wait for
    expect(c.fits(1)).toBe(false); // and nothing dropped: the journal's start, for whoever comes
    expect(c.take('a', 'h')).toBeDefined();
  });

  it('drops content a sender had no use for, only in the version it names', () => {
    const c = new RecentContent(100);
    c.put('a', 'h1', new Uint8Array(5));
    c.discard('a', 'h0');
    expect(c.bytes).toBe(5);
    c.discard('a', 'h1');
    expect(c.bytes).toBe(0);
    expect(c.take('a', 'h1')).toBeUndefined();
  });
});
