import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { depth, rekey, under } from './paths.js';

const segment = fc.stringMatching(/^[a-z.]{1,4}$/);
const relPath = fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => s.join('/'));

describe('relative path helpers', () => {
  it('under: a folder holds itself and what is below it, never a sibling sharing its prefix', () => {
    expect(under('d', 'd')).toBe(true);
    expect(under('d/x', 'd')).toBe(true);
    expect(under('dx', 'd')).toBe(false);
    expect(under('d', 'd/x')).toBe(false);
    fc.assert(
      fc.property(relPath, relPath, (a, b) => {
        expect(under(`${a}/${b}`, a)).toBe(true);
        expect(under(a, `${a}/${b}`)).toBe(false);
        expect(under(`${a}x/${b}`, a)).toBe(false);
      }),
    );
  });

  it('rekey moves a path below `from` to the same place below `to`', () => {
    expect(rekey('a/b/c', 'a/b', 'z')).toBe('z/c');
    expect(rekey('a', 'a', 'b')).toBe('b');
    fc.assert(
      fc.property(relPath, relPath, relPath, (from, rest, to) => {
        const moved = rekey(`${from}/${rest}`, from, to);
        expect(moved).toBe(`${to}/${rest}`);
        expect(under(moved, to)).toBe(true);
        expect(depth(moved) - depth(to)).toBe(depth(`${from}/${rest}`) - depth(from));
      }),
    );
  });

  it('depth counts the folders above a name', () => {
    expect(depth('a')).toBe(0);
    expect(depth('a/b/c')).toBe(2);
  });
});
