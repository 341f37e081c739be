/*
 * Named points where a fault test can make this process die as a power cut would: with
 * MIMIC_CRASH_AT=<name> in its environment, the process kills itself with SIGKILL on reaching
 * that point (no exit handlers, no flush). Read once at load; unset, a point costs a compare.
 */

const CRASH_AT = process.env.MIMIC_CRASH_AT ?? '';

/** Dies here, at once, if MIMIC_CRASH_AT names this point. */
export function crashPoint(name: string): void {
  if (CRASH_AT !== '' && CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
}
