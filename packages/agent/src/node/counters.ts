/*
 * What a node counts while it runs, for /metrics and the status page: plain numbers bumped on
 * the paths that do the work (nothing there formats or allocates), read when someone asks.
 * One NodeCounters lives as long as the node's process does: a mirror promoted hands its own to
 * the primary it becomes, so no counter ever goes back to zero under a scraper.
 *
 * Much is counted from the node's own log events (connections, refusals, failed applies), by
 * `countEvents`, which also keeps the last problems logged for the status page.
 */
import { type Logger, limitRepeats } from './log.js';

/** Refusal and error codes kept apart; more distinct codes than this are counted as `other`. */
const MAX_CODES = 64;
/** Last problems kept for the status page. */
export const RECENT_PROBLEMS = 20;

export interface Problem {
  time: string;
  event: string;
  message: string;
}

/** Events that are an operator's business: errors, refusals, failures, fencing, lost links. */
export function isProblem(event: string): boolean {
  return (
    event === 'error' ||
    event.endsWith('-failed') ||
    event.endsWith('-error') ||
    event.endsWith('-refused') ||
    event === 'refused' ||
    event === 'fenced' ||
    event === 'disconnected' ||
    event === 'mirror-disconnected' ||
    event === 'unclean-stop' ||
    event === 'owners-not-kept'
  );
}

/** Counts by a small set of string keys (codes, mirror ids), bounded. */
export class KeyedCounts {
  readonly #max: number;
  readonly map = new Map<string, number>();

  constructor(max = MAX_CODES) {
    this.#max = max;
  }

  add(key: string, n = 1): void {
    const k = this.map.has(key) || this.map.size < this.#max ? key : 'other';
    this.map.set(k, (this.map.get(k) ?? 0) + n);
  }

  get(key: string): number {
    return this.map.get(key) ?? 0;
  }
}

export class NodeCounters {
  readonly startedAt = Date.now();
  /** Paths the watcher reported. */
  watcherEvents = 0;
  /** Full rescans finished, and the seconds they took in all. */
  rescans = 0;
  rescanSeconds = 0;
  /** Ops a mirror received from its primary. */
  opsReceived = 0;
  /** Connections a mirror made to a primary that were welcomed. */
  connects = 0;
  /** Ops a mirror could not apply (each ends the connection). */
  applyFailures = 0;
  /** Connections refused, by code (either side). */
  readonly refusals = new KeyedCounts();
  /** On a primary: ops sent to each mirror, its connections, and the errors it reported. */
  readonly opsSent = new KeyedCounts(1024);
  readonly mirrorConnects = new KeyedCounts(1024);
  readonly mirrorErrors = new KeyedCounts();
  /** Newest last; at most RECENT_PROBLEMS. */
  readonly problems: Problem[] = [];

  /** Counts what `event` says happened. */
  noteEvent(event: string, fields: Record<string, unknown>): void {
    switch (event) {
      case 'connected':
        this.connects++;
        break;
      case 'apply-failed':
        this.applyFailures++;
        break;
      case 'refused':
        this.refusals.add(codeOf(fields));
        break;
      case 'mirror-connected':
        this.mirrorConnects.add(String(fields.mirror ?? ''));
        break;
      case 'mirror-error':
        this.mirrorErrors.add(String(fields.code ?? 'ERR_UNKNOWN'));
        break;
    }
    if (isProblem(event)) {
      this.problems.push({ time: new Date().toISOString(), event, message: messageOf(fields) });
      if (this.problems.length > RECENT_PROBLEMS) this.problems.shift();
    }
  }
}

/** A refusal's code: its `code` field, else the ERR_ word its reason starts with, else ERR_AUTH. */
function codeOf(fields: Record<string, unknown>): string {
  if (typeof fields.code === 'string') return fields.code;
  const reason = typeof fields.reason === 'string' ? fields.reason : '';
  return /^(ERR_[A-Z_]+)/.exec(reason)?.[1] ?? 'ERR_AUTH';
}

/** One line for the status page: the event's error or reason, else its fields. */
function messageOf(fields: Record<string, unknown>): string {
  for (const k of ['error', 'message', 'reason']) {
    if (typeof fields[k] === 'string') return (fields[k] as string).slice(0, 300);
  }
  return JSON.stringify(fields).slice(0, 300);
}

const COUNTED = Symbol('counted');

type Marked = Logger & { [COUNTED]?: NodeCounters };

/**
 * A node's logger: each event counted into `counters`, then identical lines limited (see
 * limitRepeats), so a refusal in a loop is counted every time but logged a few times a minute.
 * A logger already made so for these counters is returned as it is: a promoted mirror's logger
 * handed on to its primary counts nothing twice.
 */
export function nodeLogger(log: Logger, counters: NodeCounters): Logger {
  if ((log as Marked)[COUNTED] === counters) return log;
  const limited: Marked = limitRepeats((event, fields) => {
    counters.noteEvent(event, fields);
    log(event, fields);
  });
  limited[COUNTED] = counters;
  return limited;
}
