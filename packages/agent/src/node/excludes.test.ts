import { describe, expect, it } from 'vitest';
import { makeExcluder } from './excludes.js';

describe('makeExcluder', () => {
  it('always skips the reserved names at the root, and only there', () => {
    const skip = makeExcluder([], null);
    for (const rel of ['.mimic', '.mimic/mimic.db', '.mimic-tmp', '.mimic-tmp/x.part'])
      expect(skip(rel, false)).toBe(true);
    for (const rel of ['a/.mimic', '.mimicx', '.git/config', 'mimic', '.m'])
      expect(skip(rel, false)).toBe(false);
  });

  it('skips the state folder when it is inside the root', () => {
    const skip = makeExcluder([], 'var/state');
    expect(skip('var/state', true)).toBe(true);
    expect(skip('var/state/mimic.db', false)).toBe(true);
    expect(skip('var/stateful', false)).toBe(false);
    expect(skip('var', true)).toBe(false);
  });

  it('applies gitignore-style globs, folder-only ones to folders', () => {
    const skip = makeExcluder(['*.log', 'build/', '/top.txt'], null);
    expect(skip('a/b/x.log', false)).toBe(true);
    expect(skip('build', true)).toBe(true);
    expect(skip('build', false)).toBe(false);
    expect(skip('top.txt', false)).toBe(true);
    expect(skip('a/top.txt', false)).toBe(false);
    expect(skip('src/main.ts', false)).toBe(false);
  });
});
