// The scale tree: N small files (3,950 bytes on average, so 100,000 files are 395 MB) spread
// evenly over N/100 folders, lognormal sizes, deterministic bytes; and the one-file change.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { byteStream, MiB, rng } from '../lib.mjs';

export const MEAN_FILE_BYTES = 3950;
export const FILES_PER_FOLDER = 100;
/** The largest file; the lognormal tail is cut here (it is rarely reached: sigma is 1). */
const MAX_FILE_BYTES = MiB;
const CHUNK = 16 * MiB;

/** Folders and files of a tree of `files` files: names only, no I/O. */
export function layout(files) {
  const dirs = Math.max(1, Math.round(files / FILES_PER_FOLDER));
  const dw = String(dirs - 1).length;
  const fw = String(files - 1).length;
  const dirNames = Array.from({ length: dirs }, (_, i) => `d${String(i).padStart(dw, '0')}`);
  const counts = new Array(dirs).fill(0);
  for (let i = 0; i < files; i++) counts[i % dirs]++;
  return {
    files,
    dirs: dirNames.map((name, i) => ({ name, count: counts[i] })),
    /** Relative path of file `i` (files go round the folders in turn). */
    rel: (i) => `${dirNames[i % dirs]}/f${String(i).padStart(fw, '0')}.bin`,
  };
}

/**
 * Writes the tree under `root` and returns { layout, totalBytes, sizes }. Sizes are lognormal
 * (sigma 1) scaled so that they add up to `files` × MEAN_FILE_BYTES; bytes come from one seeded
 * stream, cut 16 MiB at a time.
 */
export function makeScaleTree(root, files, seed = 23) {
  const lay = layout(files);
  const r = rng(seed);
  const sizes = new Float64Array(files);
  let sum = 0;
  for (let i = 0; i < files; i++) sum += sizes[i] = Math.exp(r.normal());
  const target = files * MEAN_FILE_BYTES;
  const scale = target / sum;
  let total = 0;
  let largest = 0;
  for (let i = 0; i < files; i++) {
    sizes[i] = Math.min(MAX_FILE_BYTES, Math.max(1, Math.round(sizes[i] * scale)));
    total += sizes[i];
    if (sizes[i] > sizes[largest]) largest = i;
  }
  // The rounding (and the cut tail) land on one file, within the cap where possible.
  sizes[largest] = Math.max(1, sizes[largest] + target - total);

  for (const d of lay.dirs) mkdirSync(join(root, d.name), { recursive: true });
  const bytes = byteStream(`scale-${seed}`);
  let chunk = bytes.take(CHUNK);
  let at = 0;
  let written = 0;
  for (let i = 0; i < files; i++) {
    const size = sizes[i];
    if (at + size > chunk.length) {
      chunk = bytes.take(Math.max(CHUNK, size));
      at = 0;
    }
    writeFileSync(join(root, lay.rel(i)), chunk.subarray(at, at + size));
    at += size;
    written += size;
  }
  return { layout: lay, totalBytes: written, sizes };
}

/**
 * The one-file change: file N/2 gets new bytes, 100 more than it had, written in place (truncate
 * and write, as an editor or an application saving a small file does). Returns { rel, content }.
 */
export function oneFileChange(root, lay, sizes, seed = 24) {
  const i = Math.floor(lay.files / 2);
  const rel = lay.rel(i);
  const content = byteStream(`scale-change-${seed}`).take(sizes[i] + 100);
  writeFileSync(join(root, rel), content);
  return { rel, content };
}
