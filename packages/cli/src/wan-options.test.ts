import { describe, expect, test } from 'vitest';
import { CliError } from './fail.js';
import { kibPerSecond, wanOf } from './wan-options.js';

describe('the WAN flags', () => {
  test('take KiB per second and give bytes per second', () => {
    expect(wanOf({ compress: true, bwlimit: '200', bwlimitTotal: '1.5' })).toEqual({
      compress: true,
      bwlimit: 200 * 1024,
      bwlimitTotal: 1536,
    });
    expect(wanOf({})).toEqual({});
  });

  test.each(['abc', '0', '-5', '', '1e3', 'Infinity', '12k'])('refuse --bwlimit %j with one line', (v) => {
    let err: unknown;
    try {
      kibPerSecond('--bwlimit', v);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).code).toBe('ERR_INVALID_ARGUMENT');
    expect((err as CliError).message).toBe(`--bwlimit ${v}: expected KiB per second > 0`);
  });
});
