// Waiting for a mirror to hold a release exactly, against the release's manifest (names in each
// folder, sizes, SHA-1 of the contents). The first poll lists every folder and stats every file
// of the release, later ones only what is still wrong, and a last full one confirms; a file is
// hashed only when its stat (inode, size, mtime, ctime) is one not hashed before, so the
// hashing follows the changes.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { IGNORED, now, sleep } from '../lib.mjs';
import { fileHash } from './exec.mjs';

const key = (st) => `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/**
 * Cache of hash verdicts by path: { key, hash, good } for the last stat hashed against an
 * expected hash. Kept across calls (pass the same one for successive releases), so files no
 * release touched are hashed once.
 */
export const newVerdicts = () => new Map();

/** Whether `names` (a folder's listing) is exactly `want` (top-level mimic names left out). */
function sameNames(names, want, top) {
  let n = 0;
  for (const name of names) {
    if (top && IGNORED.includes(name)) continue;
    if (!want.has(name)) return false;
    n++;
  }
  return n === want.size;
}

/** What a release consists of, for looking at: each folder (its listing) and each file. */
function entriesOf(manifest) {
  return [
    ...[...manifest.dirs].map(([rel, want]) => ({ id: `${rel}/`, dir: true, rel, want })),
    ...[...manifest.files].map(([rel, want]) => ({ id: rel, dir: false, rel, want })),
  ];
}

/** Whether `e` is right under `dst` now; what is wrong with it otherwise (a string). */
function lookAt(dst, e, verdicts) {
  if (e.dir) {
    let names;
    try {
      names = readdirSync(join(dst, e.rel));
    } catch {
      return `folder ${e.rel || '.'} missing`;
    }
    return sameNames(names, e.want, e.rel === '') || `folder ${e.rel || '.'} holds other names`;
  }
  const path = join(dst, e.rel);
  const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  if (!st?.isFile() || Number(st.size) !== e.want.size)
    return st ? `${e.rel}: ${st.size} of ${e.want.size} bytes` : `${e.rel} missing`;
  const k = key(st);
  let v = verdicts.get(e.rel);
  if (v?.key !== k || v.hash !== e.want.hash) {
    const good = fileHash(path) === e.want.hash;
    // Kept only if nothing changed the file while it was hashed.
    const again = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    v = { key: k, hash: e.want.hash, good: good && again !== undefined && key(again) === k };
    verdicts.set(e.rel, v);
  }
  return v.good || `${e.rel}: other bytes`;
}

/**
 * Resolves with { ms, polls } once `dst` holds `manifest` exactly. The first poll looks at
 * everything; later ones only at what was still wrong, so they stay cheap and frequent; once
 * nothing is, one more full poll must find everything right (else the wrong ones are followed
 * again). The arrival is the latest of the moments each folder and file was first seen right
 * (and stayed so), so it does not depend on how long a poll takes. Pauses between polls are at
 * least 10 ms and 4x the poll's cost. Throws after `timeoutMs` with the first thing still wrong.
 */
export async function waitForRelease(dst, manifest, { t0, timeoutMs, check, verdicts = newVerdicts() }) {
  const all = entriesOf(manifest);
  const since = new Map();
  let targets = all;
  for (let polls = 1; ; polls++) {
    check?.();
    const start = now();
    const wrong = [];
    for (const e of targets) {
      const what = lookAt(dst, e, verdicts);
      if (what === true) {
        if (!since.has(e.id)) since.set(e.id, now());
      } else {
        since.delete(e.id);
        wrong.push({ e, what });
      }
    }
    if (wrong.length === 0 && targets === all) return { ms: Math.max(...since.values()) - t0, polls };
    targets = wrong.length === 0 ? all : wrong.map((w) => w.e);
    if (now() - t0 > timeoutMs) {
      const what = wrong[0]?.what ?? 'not yet checked in full';
      throw new Error(`${dst} does not hold the release ${timeoutMs / 1000} s after the deploy: ${what}`);
    }
    await sleep(Math.max(10, 4 * (now() - start)));
  }
}
