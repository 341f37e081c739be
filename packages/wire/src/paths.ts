import { describeValue, WireError } from './errors.js';
import { MAX_PATH_BYTES } from './limits.js';

/**
 * Paths on the wire are relative to the mirrored root, in normalised POSIX form: segments joined
 * by '/', none of them empty, '.' or '..'. Any other character is allowed, since file names may
 * hold spaces, newlines, backslashes or leading dashes. The top-level `.mimic` folder holds each
 * node's own state and is never replicated.
 */

/** Most UTF-8 bytes in one path segment (Linux `NAME_MAX`). */
export const MAX_SEGMENT_BYTES = 255;

/** First segment reserved for a node's own state. */
export const RESERVED_SEGMENT = '.mimic';

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

/**
 * Why `p` is not an acceptable wire path, or undefined when it is. Used by the validators to build
 * field-qualified messages; most callers want {@link checkWirePath}.
 */
export function wirePathProblem(p: unknown, maxBytes: number = MAX_PATH_BYTES): string | undefined {
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
  if (segments[0] === RESERVED_SEGMENT) return `must not be inside the reserved ${RESERVED_SEGMENT} folder`;
  return undefined;
}

/**
 * Returns `p` when it is a relative, normalised POSIX path of at most `maxBytes` UTF-8 bytes
 * (default 4096) whose first segment is not `.mimic`; throws `WireError` `ERR_BAD_PATH` otherwise.
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
