import { readSync, type Stats, writeSync } from 'node:fs';
import { IO_CHUNK, type StreamHasher, yieldToLoop } from '@mimic/delta';
import { HOLE_BLOCK, punchHole } from '@mimic/fsmeta';

/*
 * Holes, for both roles. The primary reads a sparse file by its data regions and sends only
 * those; the mirror leaves what no part covers unwritten, and the zero blocks of any large file
 * too, as rsync -S writes. Both hash holes as the zeros a read gives, so a file's hash does not
 * depend on how it is stored. Blocks are HOLE_BLOCK (4 KiB), aligned to the file.
 */

/**
 * At least this much of a file without blocks and it is taken for sparse; files of at least
 * this size are written without their zero blocks. Below it holes are not worth an lseek, and
 * a small file whose data sits inline in its inode (no blocks at all) is not taken for a hole.
 */
export const SPARSE_MIN_BYTES = 64 * 1024;
/** Zeros hashed between two turns of the event loop (a TiB of hole hashes for a minute or two). */
const ZEROS_PER_TURN = 64 * 1024 * 1024;
const ZERO_BLOCK = new Uint8Array(HOLE_BLOCK);
let zeros: Uint8Array | undefined;

/** Has the file clearly fewer blocks than its size? One fstat, which a reader has anyway. */
export const looksSparse = (st: Stats): boolean => st.size - st.blocks * 512 >= SPARSE_MIN_BYTES;

/** Hashes `n` zero bytes (a hole, as a read gives it) from one reused buffer. */
export async function hashZeros(hasher: StreamHasher, n: number): Promise<void> {
  zeros ??= new Uint8Array(1024 * 1024);
  for (let done = 0; done < n; ) {
    const k = Math.min(zeros.length, n - done);
    hasher.update(zeros.subarray(0, k));
    done += k;
    if (done % ZEROS_PER_TURN === 0 && done < n) await yieldToLoop();
  }
}

/** Is the block at `at` all zero? Data nearly always says no by its first two bytes. */
const zeroBlock = (b: Uint8Array, at: number): boolean =>
  b[at] === 0 && b[at + 1] === 0 && Buffer.compare(b.subarray(at, at + HOLE_BLOCK), ZERO_BLOCK) === 0;

/** Calls `run` with each run [from, to) of whole zero blocks of `b`, whose byte 0 is at `position`. */
function zeroRuns(b: Uint8Array, position: number, run: (from: number, to: number) => void): void {
  for (let at = (HOLE_BLOCK - (position % HOLE_BLOCK)) % HOLE_BLOCK; at + HOLE_BLOCK <= b.length; ) {
    let end = at;
    while (end + HOLE_BLOCK <= b.length && zeroBlock(b, end)) end += HOLE_BLOCK;
    if (end > at) run(at, end);
    at = end + HOLE_BLOCK; // the block at `end` is data (or past the end)
  }
}

function pwriteAll(fd: number, data: Uint8Array, from: number, to: number, position: number): void {
  for (let o = from; o < to; ) o += writeSync(fd, data, o, to - o, position + o);
}

/**
 * Writes `data` at `position` of a new file; with `sparse`, its runs of zero blocks are left
 * unwritten (holes) and the data between them goes in one write each, so that a file without
 * zeros costs the same writes as ever (fsmeta's writeSparse writes block by block: twice the
 * time for a dense file). True when anything was left unwritten: the file's size must then be
 * set once it is complete (`finishSparse`).
 */
export function writeAt(fd: number, data: Uint8Array, position: number, sparse: boolean): boolean {
  let from = 0;
  if (sparse) {
    zeroRuns(data, position, (zeroFrom, zeroTo) => {
      pwriteAll(fd, data, from, zeroFrom, position);
      from = zeroTo;
    });
  }
  pwriteAll(fd, data, from, data.length, position);
  return from > 0;
}

/**
 * For a file written front to back by something that writes every byte (`patchInto`): call
 * the result after each piece written, and the piece is read back (from the page cache) and its
 * runs of zero blocks punched out, so that a sparse file stays sparse through a delta. On a
 * file system that cannot punch, it gives up for that file. `fd` must be open for reading.
 */
export function holePuncher(fd: number): (bytes: number) => void {
  const buf = Buffer.allocUnsafe(IO_CHUNK);
  let position = 0;
  let able = true;
  return (bytes) => {
    for (let o = 0; o < bytes && able; o += IO_CHUNK) {
      const at = position + o;
      const piece = buf.subarray(0, readSync(fd, buf, 0, Math.min(bytes - o, IO_CHUNK), at));
      zeroRuns(piece, at, (from, to) => {
        able &&= punchHole(fd, at + from, to - from);
      });
    }
    position += bytes;
  };
}
