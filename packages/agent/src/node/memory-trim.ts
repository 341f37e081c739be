import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimMemory } from '@mimic/fsmeta';

/**
 * How often freed memory goes back to the system. After a burst of work (an initial sync, a
 * full scan) V8 does not collect what the burst left (nothing allocates any more, so nothing
 * asks it to), and glibc keeps what was freed mapped: a node's RSS stayed at its high-water
 * mark. At 100,000 files the primary kept 420 MB after its initial sync, of which 120 MB was
 * free C heap and about 60 MB buffers no longer referenced.
 */
export const TRIM_EVERY_MS = 5000;
/** A full collection runs on a tick when the loop was this idle and memory grew this much. */
const IDLE_UTILIZATION = 0.05;
const GREW_BYTES = 32 * 1024 * 1024;

setFlagsFromString('--expose-gc');
/** V8's full collection (exposed above; the flag affects only contexts made after it). */
const collect = runInNewContext('gc') as () => void;

let holders = 0;
let timer: NodeJS.Timeout | null = null;
let lastElu = performance.eventLoopUtilization();
let afterCollect = 0;

const inUse = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

/** One tick: a full collection if the loop is idle after memory grew, then a C-heap trim. */
function tick(): void {
  const elu = performance.eventLoopUtilization(lastElu);
  lastElu = performance.eventLoopUtilization();
  if (elu.utilization < IDLE_UTILIZATION && inUse() - afterCollect > GREW_BYTES) {
    collect();
    afterCollect = inUse();
  }
  trimMemory();
}

/**
 * Starts the process's periodic trim while at least one node holds it (primaries and mirrors
 * share one process in tests and in library use); returns the release.
 */
export function holdMemoryTrim(): () => void {
  holders++;
  if (!timer) {
    lastElu = performance.eventLoopUtilization();
    timer = setInterval(tick, TRIM_EVERY_MS);
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
