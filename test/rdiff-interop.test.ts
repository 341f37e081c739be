import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LIBRSYNC_DELTA_MAGIC, patch } from '@mimic/delta';
import { describe, expect, it } from 'vitest';
import { concat, firstDifference, scatterEdits, seededBytes } from './helpers/bytes.js';
import { mimic, onPath, type RunResult, run } from './helpers/run.js';
import { makeTempDir } from './helpers/temp-dir.js';

/*
 * Interoperability with librsync's rdiff in both directions: rdiff's deltas patched by mimic
 * (command line and library), and mimic's librsync-format deltas patched by rdiff.
 */

const hasRdiff = onPath('rdiff');
const title = hasRdiff
  ? 'rdiff interop'
  : 'rdiff interop (skipped: rdiff is not on PATH; install librsync tools)';

function ok(r: RunResult): void {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

const KiB = 1024;
const MiB = 1024 * KiB;
const text = new TextEncoder();

const mid = seededBytes(400 * KiB, 11);
const big = seededBytes(8 * MiB, 12);

interface Case {
  readonly name: string;
  readonly basis: Uint8Array;
  readonly target: Uint8Array;
  /** Extra `rdiff signature` options. */
  readonly rdiffSigArgs?: readonly string[];
}

const cases: readonly Case[] = [
  {
    name: 'an empty basis to a small file',
    basis: new Uint8Array(0),
    target: text.encode('fresh content\n'),
  },
  { name: 'a small file to an empty one', basis: text.encode('old content\n'), target: new Uint8Array(0) },
  {
    name: 'a small file with an edit',
    basis: text.encode('The quick brown fox jumps over the lazy dog.\n'.repeat(40)),
    target: text.encode(
      `${'The quick brown fox jumps over the lazy dog.\n'.repeat(20)}A new line.\n${'The quick brown fox jumps over the lazy dog.\n'.repeat(19)}`,
    ),
  },
  {
    name: '400 KiB with edits, an insertion and a deletion',
    basis: mid,
    target: concat([
      scatterEdits(mid.subarray(0, 150 * KiB), 30 * KiB, 40, 13),
      seededBytes(2000, 14),
      mid.subarray(150 * KiB, 300 * KiB),
      mid.subarray(310 * KiB),
    ]),
  },
  {
    name: '400 KiB with edits, 64-byte rdiff blocks',
    basis: mid,
    target: concat([
      mid.subarray(1000, 200 * KiB),
      seededBytes(300, 15),
      mid.subarray(0, 1000),
      mid.subarray(200 * KiB),
    ]),
    rdiffSigArgs: ['--block-size=64'],
  },
  {
    name: '8 MiB with scattered edits, an insertion and a deletion',
    basis: big,
    target: concat([
      scatterEdits(big.subarray(0, 3 * MiB), 700 * KiB, 100, 16),
      seededBytes(5000, 17),
      scatterEdits(big.subarray(3 * MiB, 6 * MiB), 900 * KiB, 1, 18),
      big.subarray(6 * MiB + 12_345),
    ]),
  },
];

describe.skipIf(!hasRdiff)(title, () => {
  for (const { name, basis, target, rdiffSigArgs = [] } of cases) {
    it(`rdiff signature + rdiff delta, then mimic patch: ${name}`, async () => {
      const dir = await makeTempDir();
      await writeFile(join(dir, 'old'), basis);
      await writeFile(join(dir, 'new'), target);
      ok(await run('rdiff', ['signature', ...rdiffSigArgs, 'old', 'old.rsig'], dir));
      ok(await run('rdiff', ['delta', 'old.rsig', 'new', 'new.rdelta'], dir));
      const rdelta = new Uint8Array(await readFile(join(dir, 'new.rdelta')));
      expect(new DataView(rdelta.buffer).getUint32(0)).toBe(LIBRSYNC_DELTA_MAGIC);

      ok(await mimic(['patch', 'old', 'new.rdelta', 'out'], dir));
      expect(firstDifference(await readFile(join(dir, 'out')), target)).toBeUndefined();
      expect(firstDifference(patch(basis, rdelta), target)).toBeUndefined();
    });

    if (rdiffSigArgs.length > 0) continue;

    it(`mimic signature + mimic delta --format librsync, then rdiff patch: ${name}`, async () => {
      const dir = await makeTempDir();
      await writeFile(join(dir, 'old'), basis);
      await writeFile(join(dir, 'new'), target);
      ok(await mimic(['signature', 'old', 'old.sig'], dir));
      ok(await mimic(['delta', '--format', 'librsync', 'old.sig', 'new', 'new.delta'], dir));
      ok(await run('rdiff', ['patch', 'old', 'new.delta', 'out'], dir));
      expect(firstDifference(await readFile(join(dir, 'out')), target)).toBeUndefined();
    });
  }
});
