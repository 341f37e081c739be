import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WireError } from './errors.js';
import { checkSymlinkTarget, checkWirePath, isWirePath } from './paths.js';
import { pathArb, targetArb } from './test-arbitraries.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof WireError) return err.code;
    throw err;
  }
  return 'no error';
}

const seg255 = 'é'.repeat(127) + 'x'; // 255 bytes of UTF-8
const seg256 = 'é'.repeat(128); // 256 bytes, only 128 characters

describe('checkWirePath', () => {
  it.each([
    ['empty', ''],
    ['absolute', '/etc/passwd'],
    ['root', '/'],
    ['a .. segment', 'a/../b'],
    ['a leading ..', '../b'],
    ['only ..', '..'],
    ['a . segment', 'a/./b'],
    ['only .', '.'],
    ['a leading ./', './a'],
    ['an empty segment', 'a//b'],
    ['a trailing slash', 'a/b/'],
    ['a NUL', 'a\0b'],
    ['the state folder', '.mimic'],
    ['inside the state folder', '.mimic/x'],
    ['the folder marker', '.mimic-folder'],
    ['below the folder marker name', '.mimic-folder/x'],
    ['a 256-byte segment', `dir/${seg256}`],
    ['more than 4096 bytes', Array.from({ length: 17 }, () => 'x'.repeat(250)).join('/')],
    ['a lone surrogate', 'a\ud800b'],
  ])('refuses %s', (_name, path) => {
    expect(codeOf(() => checkWirePath(path))).toBe('ERR_BAD_PATH');
    expect(isWirePath(path)).toBe(false);
  });

  it.each([
    ['spaces', 'My Documents/a file.txt'],
    ['a newline', 'line\nbreak'],
    ['a tab and a backslash', 'a\tb\\c'],
    ['unicode', 'Ünïcödé/日本語/😀.md'],
    ['a leading dash', '-rf'],
    ['dots that are not . or ..', '.../..a/a..'],
    ['a hidden file', '.gitignore'],
    ['.mimic below the top', 'a/.mimic/x'],
    ['a name starting with .mimic', '.mimicry'],
    ['a 255-byte segment', `dir/${seg255}`],
    ['exactly 4096 bytes', Array.from({ length: 16 }, () => 'x'.repeat(255)).join('/')],
  ])('accepts %s', (_name, path) => {
    expect(checkWirePath(path)).toBe(path);
    expect(isWirePath(path)).toBe(true);
  });

  it('refuses values that are not strings', () => {
    for (const value of [undefined, null, 42, ['a'], new Uint8Array(1)]) {
      expect(codeOf(() => checkWirePath(value as unknown as string))).toBe('ERR_BAD_PATH');
    }
  });

  it('honours a lower byte limit', () => {
    expect(codeOf(() => checkWirePath('abcdef', 5))).toBe('ERR_BAD_PATH');
    expect(checkWirePath('abcde', 5)).toBe('abcde');
  });

  it('accepts every generated path, and refuses it made absolute or with a .. inserted', () => {
    fc.assert(
      fc.property(pathArb, (path) => {
        expect(isWirePath(path)).toBe(true);
        expect(isWirePath(`/${path}`)).toBe(false);
        expect(isWirePath(`${path}/..`)).toBe(false);
        expect(isWirePath(`${path}/`)).toBe(false);
      }),
    );
  });
});

describe('isWirePath against the rules written out plainly', () => {
  // The rules, one by one, as the module documents them.
  function byTheRules(p: string, maxBytes: number): boolean {
    if (p === '' || p.includes('\0') || /\p{Cs}/u.test(p)) return false;
    if (Buffer.byteLength(p) > maxBytes) return false;
    const segments = p.split('/');
    if (segments[0] === '.mimic' || segments[0] === '.mimic-folder') return false;
    return segments.every((s) => s !== '' && s !== '.' && s !== '..' && Buffer.byteLength(s) <= 255);
  }
  const piece = fc.constantFrom(
    'a',
    '.',
    '..',
    '/',
    '\0',
    '\uD800',
    '\uDC00',
    '😀',
    'é',
    '.mimic',
    '.mimic-folder',
    'x'.repeat(84),
    'y'.repeat(90),
  );

  it('agrees on every string made of awkward pieces, under any byte limit', () => {
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 12 }),
        fc.integer({ min: 1, max: 600 }),
        (pieces, maxBytes) => {
          const p = pieces.join('');
          expect(isWirePath(p, maxBytes)).toBe(byTheRules(p, maxBytes));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('checkSymlinkTarget', () => {
  it.each([
    ['a relative target', '../other/file'],
    ['an absolute target', '/usr/bin/env'],
    ['a dot', '.'],
    ['a trailing slash', 'dir/'],
    ['unicode and spaces', ' 日本 😀 '],
  ])('accepts %s', (_name, target) => {
    expect(checkSymlinkTarget(target)).toBe(target);
  });

  it.each([
    ['empty', ''],
    ['a NUL', 'a\0'],
    ['more than 4096 bytes', 'x'.repeat(4097)],
  ])('refuses %s', (_name, target) => {
    expect(codeOf(() => checkSymlinkTarget(target))).toBe('ERR_BAD_PATH');
  });

  it('accepts every generated target', () => {
    fc.assert(fc.property(targetArb, (target) => checkSymlinkTarget(target) === target));
  });
});
