/*
 * Helpers for relative paths inside a root, as the manifest and the wire spell them: `/`
 * separated, no leading or trailing slash, already checked by @mimic/wire's path rules.
 */
import { isAbsolute, relative, sep } from 'node:path';

/** Whether `path` is `dir` itself or lies anywhere below it. */
export function under(path: string, dir: string): boolean {
  return (
    path === dir || (path.length > dir.length && path.startsWith(dir) && path.charCodeAt(dir.length) === 47)
  );
}

/** `path`, which lies under `from`, re-keyed under `to` (a rename of the subtree `from`). */
export function rekey(path: string, from: string, to: string): string {
  return to + path.slice(from.length);
}

/** How many folders deep `path` is: 0 for a name in the root. */
export function depth(path: string): number {
  let d = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) d++;
  return d;
}

/** `abs` relative to `root` as a POSIX path when it is strictly inside it; null otherwise. */
export function relativeInside(root: string, abs: string): string | null {
  const rel = relative(root, abs);
  return rel.startsWith('..') || rel === '' || isAbsolute(rel) ? null : rel.split(sep).join('/');
}
