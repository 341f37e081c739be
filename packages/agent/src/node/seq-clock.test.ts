import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeqClock } from './seq-clock.js';

describe('SeqClock', () => {
  it('ages and bytes of what is still waiting', () => {
    const c = new SeqClock(10, 1000);
    c.note(11, 100, 2000);
    c.note(15, 50, 3000);
    c.note(20, 0, 4000);
    expect(c.ageAfter(20, 5000)).toBe(0);
    expect(c.ageAfter(10, 5000)).toBe(3);
    expect(c.ageAfter(11, 5000)).toBe(2);
    expect(c.ageAfter(12, 5000)).toBe(2); // within the mark of 15
    expect(c.ageAfter(5, 5000)).toBe(4); // from before the clock started
    expect(c.bytesAfter(10)).toBe(150);
    expect(c.bytesAfter(11)).toBe(50);
    expect(c.bytesAfter(20)).toBe(0);
    c.forget(11);
    expect(c.size).toBe(2);
    expect(c.bytesAfter(11)).toBe(50);
    expect(c.ageAfter(11, 5000)).toBe(2);
  });

  it('stays bounded and never reports an age below the truth', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1000 })), {
          minLength: 1,
          maxLength: 400,
        }),
        fc.nat(),
        (steps, pick) => {
          const c = new SeqClock(0, 0, 16);
          const truth: { seq: number; time: number; bytes: number }[] = [];
          let seq = 0;
          let time = 0;
          for (const [gap, bytes] of steps) {
            seq += gap;
            time += 10;
            c.note(seq, bytes, time);
            truth.push({ seq, time, bytes });
          }
          expect(c.size).toBeLessThanOrEqual(16);
          const acked = truth[pick % truth.length]!.seq - 1;
          const first = truth.find((t) => t.seq > acked)!;
          const now = time + 5;
          expect(c.ageAfter(acked, now)).toBeGreaterThanOrEqual((now - first.time) / 1000);
          const behind = truth.filter((t) => t.seq > acked).reduce((n, t) => n + t.bytes, 0);
          expect(c.bytesAfter(acked)).toBeGreaterThanOrEqual(behind);
          expect(c.bytesAfter(seq)).toBe(0);
        },
      ),
    );
  });
});
