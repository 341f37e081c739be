import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkWirePath } from '@mimic/wire';
import { AgentError } from './errors.js';

/*
 * Confinement of every path a mirror writes to its root.
 *
 * A wire path is relative and normalised (`checkWirePath`), but that alone does not keep a write
 * inside the root: if `a` is a symlink, `root/a/b` lands wherever `a` points. So before a path is
 * used, each of its parents is lstat'ed from the root down and must be a real directory, never a
 * symlink, even one pointing back inside the root. A missing parent is fine: the caller creates it
 * with `mkdirsNoFollow`, one component at a time. The final component itself may be a symlink or
 * anything else: callers replace or remove it with calls that do not follow it (lstat, unlink,
 * rename onto it), never open it.
 *
 * What this does not cover: a local user with write access to the mirror root swapping a checked
 * directory for a symlink between the check and the use. Node has no openat/O_NOFOLLOW walk, so
 * that window stays open; the root must belong to the mirror's own user (see SECURITY.md). The
 * checks here stop a remote peer, whose changes are all made by this process, in order.
 */

/**
 * A path that would leave the root or pass through a symlink or a non-directory. `reason`:
 * `path` when the path itself is malformed (absolute, `..`, reserved), `parent` when it is
 * well formed but a folder on its way is a symlink or not a folder on disk now.
 */
export class ConfinementError extends AgentError {
  declare readonly code: 'ERR_UNSAFE_PATH';
  /** The relative path that was refused. */
  readonly path: string;
  readonly reason: 'path' | 'parent';
  /** For `parent`: the first folder on the way that is not one, and what it is instead. */
  readonly blocked?: { at: string; kind: 'symlink' | 'file' | 'other' };

  constructor(
    path: string,
    message: string,
    reason: 'path' | 'parent',
    options?: { cause?: unknown; blocked?: { at: string; kind: 'symlink' | 'file' | 'other' } },
  ) {
    super('ERR_UNSAFE_PATH', message, options);
    this.name = 'ConfinementError';
    this.path = path;
    this.reason = reason;
    if (options?.blocked) this.blocked = options.blocked;
  }
}

/** True for a refusal because a parent of a well-formed path is a link or not a folder now. */
export function isBlockedParent(err: unknown): err is ConfinementError {
  return err instanceof ConfinementError && err.reason === 'parent';
}

function checked(rel: string): string[] {
  try {
    checkWirePath(rel);
  } catch (err) {
    throw new ConfinementError(String(rel), (err as Error).message, 'path', { cause: err });
  }
  return rel.split('/');
}

function describeKind(st: { isSymbolicLink(): boolean; isFile(): boolean }): string {
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isFile()) return 'a file';
  return 'not a directory';
}

function kindOf(st: { isSymbolicLink(): boolean; isFile(): boolean }): 'symlink' | 'file' | 'other' {
  return st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
}

/** lstat that reports a missing path as null. */
function lstatOrNull(abs: string) {
  return lstatSync(abs, { throwIfNoEntry: false }) ?? null;
}

/**
 * (Synchronous inside: an lstat costs microseconds, a thread-pool trip far more.)
 * Returns the absolute path `root/rel` when `rel` is a valid wire path and none of its parents
 * (the root and the final component excluded) is a symlink or a non-directory. Missing parents
 * are accepted. Throws {@link ConfinementError} (`ERR_UNSAFE_PATH`) otherwise.
 */
export async function safePath(root: string, rel: string): Promise<string> {
  const segments = checked(rel);
  let abs = root;
  for (let i = 0; i < segments.length - 1; i++) {
    abs = join(abs, segments[i]!);
    const st = lstatOrNull(abs);
    // Everything below a missing parent is missing too: nothing left to follow.
    if (st === null) break;
    if (!st.isDirectory()) {
      const parent = segments.slice(0, i + 1).join('/');
      throw new ConfinementError(rel, `${rel}: parent ${parent} is ${describeKind(st)}`, 'parent', {
        blocked: { at: parent, kind: kindOf(st) },
      });
    }
  }
  return join(root, rel);
}

/**
 * Creates the folders of `relDir` below `root` that do not exist yet, one component at a time
 * and without the recursive flag, so that no component is ever followed through a symlink.
 * Each existing component must be a real directory; otherwise throws {@link ConfinementError}
 * (`ERR_UNSAFE_PATH`). `mode` applies to the folders created here. Returns the absolute path.
 */
export async function mkdirsNoFollow(root: string, relDir: string, mode?: number): Promise<string> {
  const segments = checked(relDir);
  let abs = root;
  for (let i = 0; i < segments.length; i++) {
    abs = join(abs, segments[i]!);
    let st = lstatOrNull(abs);
    if (st === null) {
      try {
        mkdirSync(abs, mode === undefined ? undefined : { mode });
      } catch (err) {
        // Someone else made it first: the lstat below decides whether it is usable.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      // mkdir does not follow a symlink in the final position, but the name may have been
      // replaced right after it was made: look again before descending into it.
      st = lstatSync(abs);
    }
    if (!st.isDirectory()) {
      const at = segments.slice(0, i + 1).join('/');
      throw new ConfinementError(relDir, `${relDir}: ${at} is ${describeKind(st)}`, 'parent', {
        blocked: { at, kind: kindOf(st) },
      });
    }
  }
  return abs;
}
