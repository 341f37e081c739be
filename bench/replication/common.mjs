// Bits every workload shares: side order, failure containment, result rows.
import { linkSync, renameSync, rmSync } from 'node:fs';
import { errorText, fmtBytes, fmtMs, median } from '../lib.mjs';

/** Sides in the given order on even runs, reversed on odd runs. */
export const sideOrder = (run, sides) => (run % 2 === 0 ? sides : [...sides].reverse());

/**
 * Run one side of one run. A failure is printed and remembered; later runs of that side are
 * skipped, so a broken side costs one timeout, not one per run, and the other side still runs.
 */
export async function guarded(side, label, fn) {
  if (side.error) return null;
  try {
    return await fn();
  } catch (e) {
    side.error = errorText(e);
    console.log(`    ${label} FAILED: ${side.error.split('\n').join('\n      ')}`);
    return null;
  }
}

/** Prefix a failure with the phase it happened in. */
export const during = (phase, promise) =>
  promise.catch((e) => {
    throw new Error(`${phase}: ${errorText(e)}`);
  });

/** A side's samples: times in ms, wire bytes and CPU ms, plus the first error. */
export const newSide = (name) => ({ name, times: [], bytes: [], cpu: [], error: null });

/**
 * Put `pristine` at `target` atomically: hard-link it beside, then rename over the target. The
 * pristine copy is never written to, so nothing has to be copied between runs.
 */
export function place(pristine, stage, target) {
  rmSync(stage, { force: true });
  linkSync(pristine, stage);
  renameSync(stage, target);
}

/** Median of a side's metric, or its error marker. */
export function summary(side, key) {
  if (side.error && side[key].length === 0) return 'error';
  const m = median(side[key]);
  return m === null ? null : m;
}

/** Result rows for the final table: mimic's value against one baseline's, with a target ratio. */
export const timeRow = (w, metric, mimic, baseline, base, target) => ({
  w,
  metric,
  mimic,
  baseline,
  base,
  target,
  fmt: fmtMs,
});
export const bytesRow = (w, metric, mimic, baseline, base, target) => ({
  w,
  metric,
  mimic,
  baseline,
  base,
  target,
  fmt: fmtBytes,
});

export function logSample(label, ms, bytes) {
  const b = bytes === null || bytes === undefined ? '' : `, ${fmtBytes(bytes)} on the wire`;
  console.log(`    ${label}: ${fmtMs(ms)}${b}`);
}
