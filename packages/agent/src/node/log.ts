import { levelOf, logs } from './log-level.js';

/** One structured log line per event worth knowing: JSON, to stderr by default. */
export type Logger = (event: string, fields: Record<string, unknown>) => void;

/** Lines of events at or above the process's log level (see log-level.ts), each naming its level. */
export function jsonLogger(
  role: string,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return (event, fields) => {
    const level = levelOf(event);
    if (!logs(level)) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, role, event, ...fields })}\n`);
  };
}

export const silentLogger: Logger = () => {};

export interface RepeatLimit {
  /** Identical lines let through per window before the rest are held back. */
  burst: number;
  windowMs: number;
  /** Most distinct lines remembered (the oldest is forgotten first). */
  maxKeys: number;
  now: () => number;
}

const REPEAT_DEFAULTS: RepeatLimit = { burst: 5, windowMs: 60_000, maxKeys: 1024, now: Date.now };

/**
 * A logger that lets an identical line (the same event and fields) through `burst` times per
 * window and holds back the rest: a peer that fails the same way in a loop must not fill the
 * log at 20 lines a second. The first line of the next window carries `repeated`, how many were
 * held back in the one before.
 */
export function limitRepeats(log: Logger, options: Partial<RepeatLimit> = {}): Logger {
  if (log === silentLogger) return log;
  const o = { ...REPEAT_DEFAULTS, ...options };
  const seen = new Map<string, { start: number; count: number; held: number }>();
  return (event, fields) => {
    const key = `${event}\u0000${JSON.stringify(fields)}`;
    const now = o.now();
    let s = seen.get(key);
    if (s && now - s.start >= o.windowMs) {
      const held = s.held;
      seen.delete(key);
      s = undefined;
      if (held > 0) {
        seen.set(key, { start: now, count: 1, held: 0 });
        log(event, { ...fields, repeated: held });
        return;
      }
    }
    if (!s) {
      if (seen.size >= o.maxKeys) seen.delete(seen.keys().next().value!);
      seen.set(key, { start: now, count: 1, held: 0 });
      log(event, fields);
      return;
    }
    if (s.count < o.burst) {
      s.count++;
      log(event, fields);
    } else s.held++;
  };
}
