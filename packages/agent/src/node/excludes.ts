import type ignoreFn from 'ignore';
import { under } from './paths.js';
import { requireCjs } from './require-cjs.js';

const ignore: typeof ignoreFn = requireCjs('ignore');

/** Names at the root that are never replicated: the state folder, the mirror's temp folder, the folder marker. */
export const RESERVED_ROOT_NAMES = ['.mimic', '.mimic-tmp', '.mimic-folder'];

/**
 * gitignore-style exclusion (the `ignore` package implements gitignore's rules exactly),
 * plus the reserved names and the state folder when it lives inside the root.
 */
/** Whether a path (relative to the root) is not replicated. */
export type Excluder = (rel: string, isDir: boolean) => boolean;

export function makeExcluder(globs: readonly string[], stateRel: string | null): Excluder {
  const ig = ignore().add([...globs]);
  return (rel, isDir) => {
    // Every reserved name starts with a dot: other paths need no look at their first segment.
    if (rel.startsWith('.') && RESERVED_ROOT_NAMES.includes(rel.split('/', 1)[0]!)) return true;
    if (stateRel && under(rel, stateRel)) return true;
    return globs.length > 0 && ig.ignores(isDir ? `${rel}/` : rel);
  };
}
