/*
 * `--config <file>`: the flags of `mimic primary` and `mimic mirror` in a TOML file.
 *
 * The keys are read from the command's own option list, so a flag added to a command is a key
 * of its file with no more code: a flag's long name without its dashes (`listen`, `token-file`,
 * `exclude`), a flag that turns something off without its `--no-` (`xattrs = false` for
 * `--no-xattrs`), and the command's argument by its name (`dir`). Values: a flag taking a value
 * takes a string or a number (a number becomes the text the flag's parser reads); an on/off
 * flag a boolean; a repeatable flag (`--exclude`) an array of strings, or one string. A flag on
 * the command line wins over the file, and the file over the defaults.
 *
 * Every problem is one line naming the file and the key (or the line of a TOML syntax error),
 * code ERR_CONFIG; a value the command itself refuses later is reported against the key and
 * the file too (blameConfig).
 */
import { readFile, stat } from 'node:fs/promises';
import type { Command, Option } from 'commander';
import { CliError, toCliError } from './fail.js';

/** A config file larger than this is refused unread (a flag file is a few hundred bytes). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** One key a command's config file may hold. */
export interface ConfigKey {
  readonly key: string;
  /** The option it sets; null for the command's argument of that name (`dir`). */
  readonly option: Option | null;
  /** An argument's position among the command's arguments. */
  readonly index: number;
  readonly kind: 'value' | 'switch' | 'list';
}

/** Every key of `cmd`'s config file, from its option list and its arguments. */
export function configKeys(cmd: Command): Map<string, ConfigKey> {
  const keys = new Map<string, ConfigKey>();
  cmd.registeredArguments.forEach((arg, index) => {
    keys.set(arg.name(), { key: arg.name(), option: null, index, kind: arg.variadic ? 'list' : 'value' });
  });
  for (const option of cmd.options) {
    if (!option.long || option.long === '--config') continue;
    const key = option.long.slice(option.negate ? '--no-'.length : '--'.length);
    const takesValue = option.required || option.optional;
    const list = takesValue && (option.variadic || Array.isArray(option.defaultValue));
    keys.set(key, { key, option, index: -1, kind: list ? 'list' : takesValue ? 'value' : 'switch' });
  }
  return keys;
}

/** What a config file holds, checked against the command's keys. */
export interface FileConfig {
  readonly file: string;
  /** Key → value as the command line would have made it (the option's parser applied). */
  readonly values: ReadonlyMap<string, unknown>;
}

/** Reads and checks `file` against `cmd`'s keys; any problem is one CliError ERR_CONFIG naming the file. */
export async function readConfigFile(file: string, cmd: Command): Promise<FileConfig> {
  const fail = (what: string) => new CliError('ERR_CONFIG', `${file}: ${what}`);
  let text: string;
  try {
    const st = await stat(file);
    if (st.isDirectory()) throw fail('is a directory');
    if (st.size > MAX_CONFIG_BYTES) throw fail(`larger than ${MAX_CONFIG_BYTES} bytes`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw fail(toCliError(err).message);
  }
  const { parse, TomlError } = await import('smol-toml');
  let table: Record<string, unknown>;
  try {
    table = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const why = err.message.split('\n', 1)[0]!.replace(/^Invalid TOML document: /, '');
    throw new CliError('ERR_CONFIG', `${file}:${err.line}:${err.column}: invalid TOML: ${why}`);
  }
  const keys = configKeys(cmd);
  const values = new Map<string, unknown>();
  for (const [key, raw] of Object.entries(table)) {
    const k = keys.get(key);
    if (!k) {
      if (key === 'config') throw fail('"config" cannot be set in a config file');
      const near = closest(key, [...keys.keys()]);
      throw fail(
        `unknown key ${JSON.stringify(key)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}`,
      );
    }
    values.set(key, fileValue(k, raw, fail));
  }
  return { file, values };
}

const describe = (v: unknown) =>
  Array.isArray(v) ? 'an array' : v instanceof Date ? 'a date' : v === null ? 'null' : `a ${typeof v}`;

/** A TOML value as the option's parser (or, for an argument, the command) takes it. */
function fileValue(k: ConfigKey, raw: unknown, fail: (what: string) => CliError): unknown {
  const text = (v: unknown): string => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    throw fail(`${k.key}: expected a string or a number, got ${describe(v)}`);
  };
  const parsed = (value: string, previous: unknown): unknown => {
    const parse = k.option?.parseArg;
    if (!parse) return value;
    try {
      return parse(value, previous);
    } catch (err) {
      throw fail(`${k.key} = ${JSON.stringify(raw)}: ${(err as Error).message}`);
    }
  };
  if (k.kind === 'switch') {
    if (typeof raw !== 'boolean') throw fail(`${k.key}: expected true or false, got ${describe(raw)}`);
    return raw;
  }
  if (k.kind === 'list') {
    const items = Array.isArray(raw) ? raw : [raw];
    const start = k.option && Array.isArray(k.option.defaultValue) ? [...k.option.defaultValue] : [];
    if (!k.option?.parseArg) return items.map(text);
    return items.reduce<unknown>((previous, item) => parsed(text(item), previous), start);
  }
  // An option whose value is optional (`--flag [value]`) also takes true, as the bare flag.
  if (k.option?.optional && raw === true) return k.option.presetArg ?? true;
  return parsed(text(raw), k.option?.defaultValue);
}

/** The known key nearest to a misspelt one, if one is near enough to be meant. */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== null && bestDistance <= Math.max(1, Math.min(3, Math.floor(best.length / 3))) ? best : null;
}

/** Levenshtein distance, one row at a time (keys are short). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + cost);
    }
    row = next;
  }
  return row[b.length]!;
}

/**
 * Sets on `cmd` what `config` holds wherever the command line gave nothing (the value's source
 * is its default, or there is none). Returns the keys it set.
 */
export function applyConfig(cmd: Command, config: FileConfig): string[] {
  const keys = configKeys(cmd);
  const set: string[] = [];
  for (const [key, value] of config.values) {
    const k = keys.get(key)!;
    if (!k.option) {
      if (cmd.processedArgs[k.index] !== undefined) continue;
      cmd.processedArgs[k.index] = value;
    } else {
      const name = k.option.attributeName();
      const source = cmd.getOptionValueSource(name);
      if (source !== undefined && source !== 'default') continue;
      cmd.setOptionValueWithSource(name, value, 'config');
    }
    set.push(key);
  }
  return set;
}

/**
 * Rewrites a failure about a flag whose value came from the file so that it names the key and
 * the file: `--rescan -1: expected seconds >= 0` becomes `www.toml: rescan -1: expected ...`.
 */
export function blameFile(err: CliError, file: string, fromFile: readonly string[]): CliError {
  if (err.code === 'ERR_CONFIG') return err;
  let message = err.message;
  for (const key of fromFile) {
    const flag = new RegExp(`(^|[\\s(])--(?:no-)?${key.replace(/[-]/g, '\\-')}(?![\\w-])`, 'g');
    message = message.replace(flag, `$1${key}`);
  }
  if (message === err.message) return err;
  return new CliError('ERR_CONFIG', `${file}: ${message}`);
}
