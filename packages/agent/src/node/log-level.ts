/*
 * How much a node logs: each event has a level, and lines below the process's threshold are
 * not written. The threshold is one per process (`--log-level`, changed at run time on SIGHUP),
 * read at every line: every jsonLogger of the process follows a change at once.
 *
 *   error  `error`, and events ending in -failed or -error (apply-failed, watch-error)
 *   warn   what an operator should look at but the node copes with: fenced, refused,
 *          retrying, disconnected, owners-not-kept, lease-lost, etcd-unreachable, ...
 *   debug  what repeats in normal work without telling anything new (reconcile-plan)
 *   info   the rest: listening, ready, connected, caught-up, promoted, ...
 */

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const WARN_EVENTS = new Set([
  'fenced',
  'refused',
  'retrying',
  'disconnected',
  'rejoining',
  'newer-primary',
  'unclean-stop',
  'lease-lost',
]);
const WARN_SUFFIXES = [
  '-refused',
  '-not-kept',
  '-not-sent',
  '-disconnected',
  '-unreachable',
  '-suppressed',
  '-ignored',
];
const DEBUG_EVENTS = new Set(['reconcile-plan']);

/** The level of an event, by its name. */
export function levelOf(event: string): LogLevel {
  if (event === 'error' || event.endsWith('-failed') || event.endsWith('-error')) return 'error';
  if (WARN_EVENTS.has(event) || WARN_SUFFIXES.some((s) => event.endsWith(s))) return 'warn';
  if (DEBUG_EVENTS.has(event)) return 'debug';
  return 'info';
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
let threshold: LogLevel = 'info';

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/** Sets the process's threshold: lines of a lower level (debug below info) are dropped from now on. */
export function setLogLevel(level: LogLevel): void {
  if (!isLogLevel(level))
    throw new TypeError(`log level ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(', ')}`);
  threshold = level;
}

export function logLevel(): LogLevel {
  return threshold;
}

/** Whether a line of `level` is written under the current threshold. */
export function logs(level: LogLevel): boolean {
  return RANK[level] <= RANK[threshold];
}
