// A slow writer, run as its own process: copies <from> over <to> in place (truncated and
// rewritten through the same inode, as cp does), 1 MiB at a time with a pause after each piece,
// so the whole write takes about <ms> milliseconds. Exits once the file is closed.
//   node bench/writes/slow-writer.mjs <from> <to> <ms>
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [from, to, spanArg] = process.argv.slice(2);
const span = Number(spanArg);
if (!from || !to || !Number.isFinite(span)) {
  console.error('usage: slow-writer.mjs <from> <to> <ms>');
  process.exit(2);
}
const PIECE = 1 << 20;
const src = openSync(from, 'r');
const size = fstatSync(src).size;
const pieces = Math.max(1, Math.ceil(size / PIECE));
const pause = span / pieces;
const buf = Buffer.allocUnsafe(PIECE);
// 'w': O_TRUNC on the existing file, the inode kept.
const dst = openSync(to, 'w');
const t0 = performance.now();
for (let i = 0, pos = 0; pos < size; i++) {
  const n = readSync(src, buf, 0, PIECE, pos);
  writeSync(dst, buf, 0, n);
  pos += n;
  // Paced against the clock, so timer slack does not add up over hundreds of pieces.
  const due = t0 + (i + 1) * pause - performance.now();
  if (pos < size && due > 0) await sleep(due);
}
closeSync(dst);
closeSync(src);
