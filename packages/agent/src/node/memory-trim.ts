import { trimMemory } from '@mimic/fsmeta';

/**
 * How often freed C-heap pages go back to the system. glibc keeps what a burst of work freed
 * (the buffers of an initial sync, a full scan's stats, SQLite's pages) mapped, so without this
 * a node's RSS stays at its high-water mark: at 100,000 files 420 MB after the initial sync, of
 * which 120 MB was free heap. One trim of a 200 MB heap costs a few milliseconds.
 */
export const TRIM_EVERY_MS = 5000;

let holders = 0;
let timer: NodeJS.Timeout | null = null;

/**
 * Starts the process's periodic trim while at least one node holds it (primaries and mirrors
 * share one process in tests and in library use); returns the release.
 */
export function holdMemoryTrim(): () => void {
  holders++;
  if (!timer) {
    timer = setInterval(() => trimMemory(), TRIM_EVERY_MS);
    timer.unref();
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}
