/*
 * Owners on the mirror: the primary's numeric uid and gid (names differ between hosts, as
 * rsync --numeric-ids assumes), set before the mode because a chown clears setuid and setgid.
 * Only root may give a file away; a mirror that is not root keeps the ids it can (a group it
 * is in) and notes once what it could not.
 */
import { fchownSync, lchownSync } from 'node:fs';
import type { Owner } from '@mimic/wire';
import type { Logger } from '../../node/log.js';

export interface OwnerPolicy {
  /** Set the owner (rsync -o; on by default as root). */
  owner: boolean;
  /** Set the group (rsync -g). */
  group: boolean;
}

/** Owners and groups both, as rsync -a as root (a mirror that is not root is told so once). */
export function defaultOwnerPolicy(): OwnerPolicy {
  return { owner: true, group: true };
}

/** The ids to pass to chown (-1: leave as it is), or null when there is nothing to set. */
export function idsFor(policy: OwnerPolicy, want: Owner): [uid: number, gid: number] | null {
  const uid = policy.owner && want.uid !== undefined ? want.uid : -1;
  const gid = policy.group && want.gid !== undefined ? want.gid : -1;
  return uid === -1 && gid === -1 ? null : [uid, gid];
}

/** Whether the owner the policy keeps differs between what is on disk and what is wanted. */
export function ownerDiffers(policy: OwnerPolicy, have: Owner, want: Owner): boolean {
  return (
    (policy.owner && want.uid !== undefined && have.uid !== want.uid) ||
    (policy.group && want.gid !== undefined && have.gid !== want.gid)
  );
}

/**
 * Sets owner and group on a path (a link itself) or an open file. EPERM (not root, or a group
 * this user is not in) is reported to `denied` once per cause and otherwise ignored: the file
 * still lands, as rsync's does. Returns whether the ids changed.
 */
export function setOwner(
  target: { path: string } | { fd: number },
  policy: OwnerPolicy,
  want: Owner,
  denied: (what: 'owner' | 'group', err: Error) => void,
): boolean {
  const ids = idsFor(policy, want);
  if (!ids) return false;
  const chown = (uid: number, gid: number) =>
    'fd' in target ? fchownSync(target.fd, uid, gid) : lchownSync(target.path, uid, gid);
  try {
    chown(ids[0], ids[1]);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    // Try the group alone (a user may give a file to a group it is in), then give up quietly.
    if (ids[0] !== -1) denied('owner', err as Error);
    if (ids[1] === -1) return false;
    try {
      chown(-1, ids[1]);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      denied('group', e as Error);
      return false;
    }
  }
}

/**
 * A mirror's owner setting: its policy, and what it was refused, logged once per kind. Owners
 * are tried even when not root, so that a mirror that cannot keep them says so; after the first
 * refusal it stops trying (every other chown would be refused the same way).
 */
export class Owners {
  #policy: OwnerPolicy = defaultOwnerPolicy();
  readonly #log: Logger;
  readonly #denied = new Set<'owner' | 'group'>();

  constructor(log: Logger) {
    this.#log = log;
  }

  get policy(): OwnerPolicy {
    return this.#policy;
  }

  set policy(p: OwnerPolicy) {
    this.#policy = { owner: p.owner && !this.#denied.has('owner'), group: p.group };
  }

  /** Sets what the policy keeps of `want` on a path (a link itself) or an open file. */
  set(target: { path: string } | { fd: number }, want: Owner): boolean {
    return setOwner(target, this.#policy, want, this.#onDenied);
  }

  differs(have: Owner, want: Owner): boolean {
    return ownerDiffers(this.#policy, have, want);
  }

  /** What this mirror could not keep of the primary's metadata (`owner`, `group`). */
  get notKept(): string[] {
    return [...this.#denied];
  }

  #onDenied = (what: 'owner' | 'group', err: Error): void => {
    if (this.#denied.has(what)) return;
    this.#denied.add(what);
    if (what === 'owner') this.#policy = { ...this.#policy, owner: false };
    this.#log('owners-not-kept', { what, error: err.message, hint: 'run the mirror as root to keep owners' });
  };
}
