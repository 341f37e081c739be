import { describeValue, WireError, type WireErrorCode } from './errors.js';
import type { WireLimits } from './limits.js';
import { FOLDER_ID_PATTERN, HASH_PATTERN, NODE_ID_PATTERN } from './messages.js';
import { symlinkTargetProblem, wirePathProblem } from './paths.js';

/**
 * The building blocks of message validation: a check takes a value and the dotted name of the
 * field it came from, and throws `WireError` naming that field. A shape is a table of checks for
 * the fields of one object, plus optional rules across fields. Objects must hold exactly the fields
 * of their shape; optional fields may be absent or `undefined`.
 */

export type Check = (value: unknown, field: string, limits: WireLimits) => void;

export interface FieldSpec {
  readonly check: Check;
  readonly optional?: boolean;
}

export interface Shape {
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /** Rules across fields, run after every field passed its own check. */
  readonly refine?: (value: Record<string, unknown>, field: string) => void;
}

const MAX_URL_CHARS = 2048;
const LONE_SURROGATE = /\p{Cs}/u;

export function fail(
  field: string,
  expected: string,
  value: unknown,
  code: WireErrorCode = 'ERR_BAD_MESSAGE',
): never {
  throw new WireError(code, `${field}: expected ${expected}, got ${describeValue(value)}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export const literal =
  (expected: string): Check =>
  (v, field) => {
    if (v !== expected) fail(field, `'${expected}'`, v);
  };

export const oneOf = (...allowed: string[]): Check => {
  const set = new Set(allowed);
  const expected = `one of ${allowed.map((a) => `'${a}'`).join(', ')}`;
  return (v, field) => {
    if (typeof v !== 'string' || !set.has(v)) fail(field, expected, v);
  };
};

export const safeUint: Check = (v, field) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    fail(field, 'a non-negative safe integer', v);
  }
};

export const fileMode: Check = (v, field) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0o7777) {
    fail(field, 'an integer mode from 0 to 0o7777', v);
  }
};

/** A numeric user or group id (ids of 2^32 - 1 mean "none" to the kernel and are refused). */
export const ownerId: Check = (v, field) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 0xffffffff) {
    fail(field, 'an integer id from 0 to 4294967294', v);
  }
};

export const mtime: Check = (v, field) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(field, 'a finite number >= 0', v);
};

/** The nanoseconds of a time past its whole milliseconds. */
export const nanos: Check = (v, field) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 999_999) {
    fail(field, 'an integer from 0 to 999999 (ns)', v);
  }
};

export const bool: Check = (v, field) => {
  if (typeof v !== 'boolean') fail(field, 'a boolean', v);
};

export const bytes =
  (exactLength?: number): Check =>
  (v, field) => {
    if (!(v instanceof Uint8Array)) fail(field, 'a Uint8Array', v);
    if (exactLength !== undefined && v.length !== exactLength) fail(field, `exactly ${exactLength} bytes`, v);
  };

export const boundedBytes =
  (maxLength: number): Check =>
  (v, field) => {
    if (!(v instanceof Uint8Array)) fail(field, 'a Uint8Array', v);
    if (v.length > maxLength) fail(field, `at most ${maxLength} bytes`, v, 'ERR_TOO_LARGE');
  };

export const pattern =
  (re: RegExp, expected: string): Check =>
  (v, field) => {
    if (typeof v !== 'string' || !re.test(v)) fail(field, expected, v);
  };

export const text =
  (minChars: number, maxChars: number): Check =>
  (v, field) => {
    if (typeof v !== 'string' || v.length < minChars || v.length > maxChars || LONE_SURROGATE.test(v)) {
      fail(field, `a well-formed string of ${minChars} to ${maxChars} characters`, v);
    }
  };

export const wirePath: Check = (v, field, limits) => {
  const problem = wirePathProblem(v, limits.maxPathBytes);
  if (problem !== undefined) throw new WireError('ERR_BAD_PATH', `${field}: ${problem}`);
};

export const symlinkTarget: Check = (v, field) => {
  const problem = symlinkTargetProblem(v);
  if (problem !== undefined) throw new WireError('ERR_BAD_PATH', `${field}: ${problem}`);
};

export const wsUrl: Check = (v, field, limits) => {
  const expected = `a ws: or wss: URL of at most ${MAX_URL_CHARS} characters`;
  text(1, MAX_URL_CHARS)(v, field, limits);
  let url: URL;
  try {
    url = new URL(v as string);
  } catch {
    fail(field, expected, v);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') fail(field, expected, v);
};

export const nodeId = pattern(NODE_ID_PATTERN, '1 to 64 characters of [A-Za-z0-9._-]');
export const hash = pattern(HASH_PATTERN, '16 lowercase hex characters');
export const folderId = pattern(FOLDER_ID_PATTERN, '32 lowercase hex characters');

export const object =
  (shape: Shape): Check =>
  (v, field, limits) =>
    checkShape(v, shape, field, limits);

export const req = (check: Check): FieldSpec => ({ check });
export const opt = (check: Check): FieldSpec => ({ check, optional: true });

/** `field.key`, or `field["odd key"]` when the key would not read well unquoted. */
function subField(field: string, key: string): string {
  return /^[A-Za-z_$][\w$]{0,63}$/.test(key) ? `${field}.${key}` : `${field}[${describeValue(key)}]`;
}

export function checkShape(value: unknown, shape: Shape, field: string, limits: WireLimits): void {
  if (!isPlainObject(value)) fail(field, 'an object', value);
  const { fields } = shape;
  for (const [key, spec] of Object.entries(fields)) {
    const v = value[key];
    if (v === undefined) {
      if (spec.optional === true) continue;
      throw new WireError('ERR_BAD_MESSAGE', `${field}.${key}: missing`);
    }
    spec.check(v, `${field}.${key}`, limits);
  }
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(fields, key)) {
      throw new WireError('ERR_BAD_MESSAGE', `${subField(field, key)}: unknown field`);
    }
  }
  shape.refine?.(value, field);
}
