// Comparing folders, and waiting (cheaply) until a destination holds what a source holds.
import { closeSync, lstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { now, sleep } from './run.mjs';

/** Top-level names every comparison skips: mimic's default state folder and its folder marker. */
export const IGNORED = ['.mimic', '.mimic-folder'];

/**
 * Every entry under `root` as a Map of relative path → { type, size }, sorted by path.
 * Top-level names in `ignore` are skipped.
 */
export function walkTree(root, ignore = IGNORED) {
  const out = new Map();
  const visit = (rel) => {
    const names = readdirSync(join(root, rel)).sort();
    for (const name of names) {
      if (rel === '' && ignore.includes(name)) continue;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, childRel));
      if (st.isDirectory()) {
        out.set(childRel, { type: 'dir', size: 0 });
        visit(childRel);
      } else if (st.isSymbolicLink()) out.set(childRel, { type: 'symlink', size: st.size });
      else out.set(childRel, { type: 'file', size: st.size });
    }
  };
  visit('');
  return out;
}

const bufA = Buffer.allocUnsafe(4 << 20);
const bufB = Buffer.allocUnsafe(4 << 20);

/** Byte-for-byte equality of two files. */
export function filesEqual(a, b) {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  try {
    for (let pos = 0; ; ) {
      const na = readSync(fa, bufA, 0, bufA.length, pos);
      const nb = readSync(fb, bufB, 0, bufB.length, pos);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (bufA.compare(bufB, 0, nb, 0, na) !== 0) return false;
      pos += na;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/**
 * Same relative paths, types, sizes and file contents under both roots (top-level `.mimic` skipped).
 * Returns { equal, diffs } with at most `maxDiffs` human-readable differences.
 */
export function compareTrees(a, b, { maxDiffs = 5 } = {}) {
  const ta = walkTree(a);
  const tb = walkTree(b);
  const diffs = [];
  const add = (d) => diffs.length < maxDiffs && diffs.push(d);
  for (const [rel, ea] of ta) {
    const eb = tb.get(rel);
    if (!eb) add(`missing ${rel}`);
    else if (ea.type !== eb.type) add(`${rel}: ${ea.type} vs ${eb.type}`);
    else if (ea.size !== eb.size && ea.type === 'file') add(`${rel}: size ${ea.size} vs ${eb.size}`);
    else if (ea.type === 'file' && !filesEqual(join(a, rel), join(b, rel))) add(`${rel}: contents differ`);
  }
  for (const rel of tb.keys()) if (!ta.has(rel)) add(`extra ${rel}`);
  return { equal: diffs.length === 0, diffs };
}

/** What a destination must hold after a change: every file of the source, checked by size. */
export function expectAll(srcRoot) {
  return [...walkTree(srcRoot)].filter(([, e]) => e.type === 'file').map(([rel]) => ({ rel, check: 'size' }));
}

/** What a destination must hold after an edit: changed paths by content, removed paths absent. */
export const expectEdit = ({ changed, removed }) => [
  ...removed.filter((rel) => !changed.includes(rel)).map((rel) => ({ rel, check: 'absent' })),
  ...changed.map((rel) => ({ rel, check: 'content' })),
];

/** With `byCtime`, the poller never sleeps longer than this (the time it reports does not depend on it). */
const MAX_CTIME_PAUSE_MS = 250;

/**
 * Wait until `dst` mirrors `src`. Cheap checks first: each poll looks at no more than `budget` of
 * the paths still pending, in rotation (stat for size, then contents for 'content' paths, absence
 * for 'absent'), and the pause between polls is at least `intervalMs` and at least 4× the poll's
 * cost, so a large pending set does not eat the CPU the replicator needs. Paths leave the set as
 * they arrive, so near the end every poll covers all that is left. When nothing is pending, the
 * moment the last path was looked at (before its contents were compared) is the arrival time; a
 * full compareTrees() then confirms it (if it does not, full compares repeat and the arrival time
 * becomes the first one that passes, flagged `late`).
 * `check()` runs each poll (e.g. to throw when a replicator process has died). `stallMs` gives up
 * early when no pending path has arrived for that long (a replicator that stopped short).
 * `byCtime` (for trees of many files that each land by a rename): the arrival time is instead the
 * newest status-change time (ctime) among the expected files, read once the trees compare equal;
 * the kernel stamps it when a file takes its final name (and again at any later change, so it is
 * never early). That moment does not depend on how often the poller looks, so it looks with at
 * most a twentieth of a core and leaves the rest to the replicator.
 * Resolves { ms (from t0), late, polls }; throws on timeout or stall with what is left.
 */
export async function waitForMirror(
  src,
  dst,
  expected,
  {
    t0 = now(),
    timeoutMs,
    intervalMs = 10,
    budget = 256,
    stallMs = Number.POSITIVE_INFINITY,
    byCtime = false,
    check,
  } = {},
) {
  const pending = expected.map((e) => ({ ...e, size: undefined }));
  // ctime is wall-clock time; t0 is on the monotonic clock.
  const wallAtT0 = Date.now() - (now() - t0);
  const deadline = t0 + timeoutMs;
  let progressAt = now();
  let cursor = 0;
  let polls = 0;
  while (pending.length > 0) {
    check?.();
    const start = now();
    const n = Math.min(budget, pending.length);
    for (let i = 0; i < n && pending.length > 0; i++) {
      if (cursor >= pending.length) cursor = 0;
      const seenAt = now();
      if (arrived(src, dst, pending[cursor])) {
        pending[cursor] = pending[pending.length - 1];
        pending.pop();
        progressAt = seenAt;
      } else cursor++;
    }
    polls++;
    if (pending.length === 0) break;
    if (now() > deadline) {
      throw new Error(
        `not mirrored after ${timeoutMs} ms: ${pending.length} pending, e.g. ${pending[0].rel}`,
      );
    }
    if (now() - progressAt > stallMs) {
      const left = `${pending.length} pending, e.g. ${pending[0].rel}`;
      throw new Error(`mirror stalled: nothing arrived for ${(stallMs / 1000).toFixed(0)} s; ${left}`);
    }
    const cost = now() - start;
    await sleep(
      byCtime
        ? Math.min(MAX_CTIME_PAUSE_MS, Math.max(intervalMs, 19 * cost))
        : Math.max(intervalMs, 4 * cost),
    );
  }
  // The last path was complete when it was looked at, before its contents were compared.
  const arrivedAt = progressAt;
  let late = false;
  for (;;) {
    const cmp = compareTrees(src, dst);
    if (cmp.equal && byCtime) {
      // Stamped by the kernel as each file took its final name (or later, never earlier).
      return { ms: newestCtime(dst, expected) - wallAtT0, late, polls };
    }
    if (cmp.equal) return { ms: (late ? now() : arrivedAt) - t0, late, polls };
    late = true;
    if (now() > deadline) throw new Error(`trees differ after ${timeoutMs} ms: ${cmp.diffs.join('; ')}`);
    check?.();
    await sleep(200);
  }
}

function arrived(src, dst, e) {
  const d = statSync(join(dst, e.rel), { throwIfNoEntry: false });
  if (e.check === 'absent') return d === undefined;
  if (d === undefined || !d.isFile()) return false;
  if (e.size === undefined) e.size = statSync(join(src, e.rel)).size;
  if (d.size !== e.size) return false;
  return e.check !== 'content' || filesEqual(join(src, e.rel), join(dst, e.rel));
}

/** The newest ctime (wall clock, ms) among the expected files that exist under `dst`. */
function newestCtime(dst, expected) {
  let newest = Number.NEGATIVE_INFINITY;
  for (const e of expected) {
    const d = lstatSync(join(dst, e.rel), { throwIfNoEntry: false });
    if (d) newest = Math.max(newest, d.ctimeMs);
  }
  return newest;
}
