// The W2 tree (many files, lognormal sizes, nested folders) and the W3 edit of it.
import { closeSync, mkdirSync, openSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { byteStream, rng } from './data.mjs';
import { walkTree } from './tree-compare.mjs';

export const W2_FULL = { files: 20_000, totalBytes: 300_000_000, dirs: 200 };
export const W2_QUICK = { files: 2_000, totalBytes: 30_000_000, dirs: 40 };

/**
 * Write the W2 tree under `root`: `dirs` folders nested at random (each under the root or under an
 * earlier folder), `files` files spread over them, lognormal sizes (sigma 1.5) scaled to sum to
 * exactly `totalBytes`. Returns the list of { rel, size }.
 */
export function makeTree(root, { files, totalBytes, dirs }, seed = 2) {
  const r = rng(seed);
  const dirPaths = [];
  for (let i = 0; i < dirs; i++) {
    const parent = i === 0 || r.next() < 0.25 ? '' : dirPaths[r.int(dirPaths.length)];
    dirPaths.push(join(parent, `d${String(i).padStart(3, '0')}`));
  }
  for (const d of dirPaths) mkdirSync(join(root, d), { recursive: true });

  const raw = Array.from({ length: files }, () => Math.exp(1.5 * r.normal()));
  const scale = totalBytes / raw.reduce((a, b) => a + b, 0);
  const sizes = raw.map((x) => Math.max(1, Math.round(x * scale)));
  let largest = 0;
  for (let i = 1; i < files; i++) if (sizes[i] > sizes[largest]) largest = i;
  sizes[largest] += totalBytes - sizes.reduce((a, b) => a + b, 0);

  const bytes = byteStream(`tree-${seed}`);
  const list = [];
  for (let i = 0; i < files; i++) {
    const rel = join(dirPaths[r.int(dirPaths.length)], `f${String(i).padStart(5, '0')}.bin`);
    writeFileSync(join(root, rel), bytes.take(sizes[i]));
    list.push({ rel, size: sizes[i] });
  }
  return list;
}

/**
 * The W3 edit, applied in place under `root`: 1% of the files get 1–4 small overwrites (size kept),
 * and files/400 (50 for 20,000) each are deleted, renamed into another folder, and created new.
 * Deterministic for a given tree and seed. Returns { changed, removed } as relative paths: what
 * must now exist with the source's content, and what must no longer exist.
 */
export function applyW3Edit(root, seed = 4) {
  const r = rng(seed);
  const bytes = byteStream(`w3-${seed}`);
  const entries = walkTree(root);
  const files = [...entries]
    .filter(([, e]) => e.type === 'file' && e.size > 0)
    .map(([rel, e]) => ({ rel, ...e }));
  const dirs = [...entries].filter(([, e]) => e.type === 'dir').map(([rel]) => rel);
  const nEdit = Math.max(1, Math.round(files.length / 100));
  const nEach = Math.max(1, Math.round(files.length / 400));
  const order = r.pick(files.length, nEdit + 2 * nEach).map((i) => files[i]);
  const changed = [];
  const removed = [];

  for (const f of order.slice(0, nEdit)) {
    const fd = openSync(join(root, f.rel), 'r+');
    try {
      for (let k = 1 + r.int(4); k > 0; k--) {
        const len = Math.min(f.size, 1 + r.int(256));
        writeSync(fd, bytes.take(len), 0, len, r.int(f.size - len + 1));
      }
    } finally {
      closeSync(fd);
    }
    changed.push(f.rel);
  }
  for (const f of order.slice(nEdit, nEdit + nEach)) {
    unlinkSync(join(root, f.rel));
    removed.push(f.rel);
  }
  for (const [i, f] of order.slice(nEdit + nEach).entries()) {
    const to = join(dirs[r.int(dirs.length)] ?? '', `r${i}-${f.rel.split('/').pop()}`);
    renameSync(join(root, f.rel), join(root, to));
    removed.push(f.rel);
    changed.push(to);
  }
  for (let i = 0; i < nEach; i++) {
    const rel = join(dirs[r.int(dirs.length)] ?? '', `n${String(i).padStart(5, '0')}.bin`);
    const size = Math.min(4_000_000, Math.max(1, Math.round(5000 * Math.exp(1.5 * r.normal()))));
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), bytes.take(size));
    changed.push(rel);
  }
  return { changed, removed };
}

/**
 * The W2 tree (W2_QUICK or W2_FULL) under `work`, written on the first call and then returned
 * as it is: W2 and W3 share it, read-only.
 */
export function sharedW2Tree(work, quick, settle) {
  let dir = null;
  return async () => {
    if (dir) return dir;
    const shape = quick ? W2_QUICK : W2_FULL;
    console.log(
      `  writing the W2 tree: ${shape.files} files, ${shape.totalBytes / 1e6} MB, ${shape.dirs} folders`,
    );
    dir = join(work, 'tree');
    mkdirSync(dir, { recursive: true });
    makeTree(dir, shape);
    await settle();
    return dir;
  };
}
