// Waiting for one file on a mirror to hold a known version, cheaply: a stat every 10 ms, and a
// hash only when the stat shows a file of the right size that differs from the last one hashed.
import { statSync } from 'node:fs';
import { now, sleep } from '../lib.mjs';
import { fileHash } from './exec.mjs';

const POLL_MS = 10;

/** What identifies one state of a file: inode, size, mtime and ctime in ns ('' when absent). */
function stamp(path) {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (!st) return { key: '', size: -1 };
  return { key: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, size: Number(st.size) };
}

/**
 * Resolves with { ms } (from `t0`) once `path` has `size` bytes hashing to `hash`. The arrival
 * is the stat that first showed the matching file, taken before its bytes were hashed, and it
 * counts only if a stat after the hash shows the file unchanged (else the hash is redone). Throws
 * after `timeoutMs` with what the file holds then; `check()` runs every poll (a dead agent).
 */
export async function waitForVersion(path, { size, hash, t0, timeoutMs, check }) {
  let hashedKey = '';
  let last = { size: -1 };
  for (;;) {
    check?.();
    const seenAt = now();
    const s = stamp(path);
    last = s;
    if (s.size === size && s.key !== hashedKey) {
      hashedKey = s.key;
      if (fileHash(path) === hash && stamp(path).key === s.key) return { ms: seenAt - t0 };
      continue; // changed while hashed, or not the version yet: look again at once
    }
    if (now() - t0 > timeoutMs) {
      const what = last.size < 0 ? 'absent' : `${last.size} of ${size} bytes, not the new version`;
      throw new Error(`${path} not the new version ${timeoutMs / 1000} s after the write (${what})`);
    }
    await sleep(POLL_MS);
  }
}

/**
 * Watches `path` (a stat every 10 ms) until stop(), which resolves with the smallest size seen
 * (-1: absent at some point). Shows whether a mirror passed on a writer's truncation, holding
 * a cut-down copy for a while.
 */
export function watchShortest(path) {
  let least = Number.POSITIVE_INFINITY;
  let running = true;
  const loop = (async () => {
    while (running) {
      least = Math.min(least, stamp(path).size);
      await sleep(POLL_MS);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return least;
    },
  };
}
