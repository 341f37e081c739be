import { describeValue, WireError } from './errors.js';
import { MAX_PATH_BYTES } from './limits.js';

/**
 * Paths on the wire are relative to the mirrored root, in normalised POSIX form: segments joined
 * by '/', none of them empty, '.' or '..'. Any other character is allowed, since file names may
 * hold spaces, newlines, backslashes or leading dashes. The top-level `.mimic` folder holds each
 * node's own state and `.mimic-folder` is the folder's identity marker: neither is replicated.
 */

/** Most UTF-8 bytes in one path segment (Linux `NAME_MAX`). */
export const MAX_SEGMENT_BYTES = 255;

/** First segment reserved for a node's own state. */
export const RESERVED_SEGMENT = '.mimic';

/** Every first segment no wire path may have: the state folder and the folder marker. */
export const RESERVED_SEGMENTS: readonly string[] = [RESERVED_SEGMENT, '.mimic-folder'];

// With the `u` flag a well-formed surrogate pair is one code point, so this only finds lone halves,
// which UTF-8 cannot carry and would turn into U+FFFD on the other side.
const LONE_SURROGATE = /\p{Cs}/u;

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Common checks for paths and symlink targets; returns the problem, or undefined. */
function stringProblem(s: unknown, maxBytes: number): string | undefined {
  if (typeof s !== 'string') return `expected a string, got ${typeof s}`;
  if (s.length === 0) return 'must not be empty';
  if (s.includes('\0')) return 'must not contain a NUL character';
  if (LONE_SURROGATE.test(s)) return 'must be well-formed Unicode (lone surrogate)';
  if (utf8Length(s) > maxBytes) return `must be at most ${maxBytes} bytes of UTF-8`;
  return undefined;
}

const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * True when `p` is surely acceptable, found in one pass over it: short enough that no byte count
 * is needed, no NUL, no surrogate at all, no empty, '.' or '..' segment, not reserved. False
 * means only that the full check must decide (every path of a large tree passes through here).
 */
function plainPath(p: string, maxBytes: number): boolean {
  const n = p.length;
  if (n === 0 || n * 3 > maxBytes) return false;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? p.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      const len = i - start;
      if (len === 0 || len * 3 > MAX_SEGMENT_BYTES) return false;
      if (p.charCodeAt(start) === DOT && (len === 1 || (len === 2 && p.charCodeAt(start + 1) === DOT)))
        return false;
      start = i + 1;
    } else if (c === 0 || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  // Anything starting like a reserved name is left to the full check.
  return !p.startsWith(RESERVED_SEGMENT);
}

/**
 * Why `p` is not an acceptable wire path, or undefined when it is. Used by the validators to build
 * field-qualified messages; most callers want {@link checkWirePath}.
 */
export function wirePathProblem(p: unknown, maxBytes: number = MAX_PATH_BYTES): string | undefined {
  if (typeof p === 'string' && plainPath(p, maxBytes)) return undefined;
  const problem = stringProblem(p, maxBytes);
  if (problem !== undefined) return problem;
  const path = p as string;
  if (path.startsWith('/')) return 'must be relative (leading /)';
  if (path.endsWith('/')) return 'must not end with /';
  const segments = path.split('/');
  for (const segment of segments) {
    if (segment === '') return 'must not contain an empty segment (//)';
    if (segment === '.' || segment === '..') return `must not contain a '${segment}' segment`;
    // Each UTF-16 unit takes at most 3 bytes of UTF-8, so short segments need no byte count.
    if (segment.length * 3 > MAX_SEGMENT_BYTES && utf8Length(segment) > MAX_SEGMENT_BYTES) {
      return `segments must be at most ${MAX_SEGMENT_BYTES} bytes of UTF-8`;
    }
  }
  if (RESERVED_SEGMENTS.includes(segments[0]!)) return `must not be inside the reserved ${segments[0]} name`;
  return undefined;
}

/**
 * Returns `p` when it is a relative, normalised POSIX path of at most `maxBytes` UTF-8 bytes
 * (default 4096) whose first segment is not reserved (`.mimic`, `.mimic-folder`); throws `WireError` `ERR_BAD_PATH` otherwise.
 */
export function checkWirePath(p: string, maxBytes: number = MAX_PATH_BYTES): string {
  const problem = wirePathProblem(p, maxBytes);
  if (problem !== undefined) throw new WireError('ERR_BAD_PATH', `path ${describeValue(p)}: ${problem}`);
  return p;
}

/** True when {@link checkWirePath} would accept `p`. */
export function isWirePath(p: unknown, maxBytes: number = MAX_PATH_BYTES): p is string {
  return wirePathProblem(p, maxBytes) === undefined;
}

/** Why `t` is not an acceptable symlink target, or undefined when it is. */
export function symlinkTargetProblem(t: unknown): string | undefined {
  return stringProblem(t, MAX_PATH_BYTES);
}

/**
 * Returns `t` when it is a usable symlink target: any non-empty string without NUL, at most 4096
 * UTF-8 bytes. Targets are stored as given, never followed here, so `..` and absolute targets pass.
 * Throws `WireError` `ERR_BAD_PATH` otherwise.
 */
export function checkSymlinkTarget(t: string): string {
  const problem = symlinkTargetProblem(t);
  if (problem !== undefined) {
    throw new WireError('ERR_BAD_PATH', `symlink target ${describeValue(t)}: ${problem}`);
  }
  return t;
}
