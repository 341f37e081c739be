/*
 * A config reload (SIGHUP): the file is read again and checked as at start; a bad one changes
 * nothing. Of the keys whose value in force would change (a key the command line gave keeps
 * its value; one removed from the file goes back to its default), those that can change in a
 * running node are applied to the agent running now (after a promotion or a rejoin, that one),
 * the others are named as needing a restart.
 *
 *   exclude          Primary.setExcludes: newly excluded paths stop replicating (mirrors keep
 *                    what they have), newly included ones are picked up by a scan; a mirror
 *                    has nothing to exclude
 *   log-level        the process's threshold, set last: the reload's own line is written under
 *                    the level it found
 *   bwlimit          setBandwidth: a primary's limit per mirror, a mirror's on what it reads
 *   bwlimit-total    a primary's limit on all its mirrors together (a mirror's applies only
 *                    once promoted: it needs a restart)
 */
import type { Mirror, Primary } from '@mimic/agent';
import { blameFile, configKeys, readConfigFile } from './config-file.js';
import type { RunningConfig } from './config-option.js';
import { toCliError } from './fail.js';
import { kibPerSecond } from './wan-options.js';

const lib = () => import('@mimic/agent');

type Agent = Primary | Mirror;

export interface ReloadResult {
  applied: string[];
  needsRestart: string[];
}

/** A bandwidth limit from the file, checked as the flag is (KiB/s), in bytes per second; none: null. */
const limit = (flag: string, value: unknown) =>
  value === undefined ? null : kibPerSecond(flag, String(value));

/**
 * Each reloadable key: `check` turns the file's value into what the agent takes (throwing as
 * the flag would at start), `apply` gives it to the running agent, or returns false where that
 * agent cannot take it without a restart (a mirror's total limit: it has one only once promoted).
 */
const RELOADABLE: Record<
  string,
  {
    check: (value: unknown) => unknown;
    apply: (agent: Agent, checked: unknown, isPrimary: boolean) => boolean;
  }
> = {
  exclude: {
    check: (value) => value ?? [],
    apply: (agent, globs, isPrimary) => {
      if (isPrimary) (agent as Primary).setExcludes(globs as string[]);
      return true;
    },
  },
  bwlimit: {
    check: (value) => limit('--bwlimit', value),
    apply: (agent, rate, isPrimary) => {
      if (isPrimary) (agent as Primary).setBandwidth({ perMirror: rate as number | null });
      else (agent as Mirror).setBandwidth({ receive: rate as number | null });
      return true;
    },
  },
  'bwlimit-total': {
    check: (value) => limit('--bwlimit-total', value),
    apply: (agent, rate, isPrimary) => {
      if (isPrimary) (agent as Primary).setBandwidth({ total: rate as number | null });
      return isPrimary;
    },
  },
};

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Reads `rc.file` again and applies what changed to `agent`; `report` is called with the
 * outcome before the new log level takes effect. A bad file throws (a CliError, ERR_CONFIG)
 * before anything is applied.
 */
export async function reloadConfig(
  rc: RunningConfig,
  agent: Agent,
  report: (result: ReloadResult) => void,
): Promise<ReloadResult> {
  if (!rc.file) throw new TypeError('reloadConfig: the command was started without --config');
  const config = await readConfigFile(rc.file, rc.cmd);
  const { Primary, setLogLevel } = await lib();
  const isPrimary = agent instanceof Primary;
  const result: ReloadResult = { applied: [], needsRestart: [] };
  const changed: [key: string, next: unknown][] = [];
  for (const [key, k] of configKeys(rc.cmd)) {
    if (rc.fromCommandLine.has(key)) continue;
    const fallback = k.option
      ? k.option.negate
        ? (k.option.defaultValue ?? true)
        : k.option.defaultValue
      : undefined;
    const next = config.values.has(key) ? config.values.get(key) : fallback;
    if (!same(next, rc.values.get(key))) changed.push([key, next]);
  }
  // Every new value checked before any is applied: a bad one changes nothing.
  const checked = new Map<string, unknown>();
  for (const [key, next] of changed) {
    const r = RELOADABLE[key];
    if (!r) continue;
    try {
      checked.set(key, r.check(next));
    } catch (err) {
      throw blameFile(toCliError(err), rc.file, [key]);
    }
  }
  let logLevel: unknown;
  for (const [key, next] of changed) {
    if (key === 'log-level') logLevel = next;
    else if (!checked.has(key) || !RELOADABLE[key]!.apply(agent, checked.get(key), isPrimary)) {
      result.needsRestart.push(key);
      continue;
    }
    rc.values.set(key, next);
    result.applied.push(key);
  }
  report(result);
  if (logLevel !== undefined) setLogLevel(logLevel as Parameters<typeof setLogLevel>[0]);
  return result;
}
