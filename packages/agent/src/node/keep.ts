/*
 * What a node keeps of each path beyond its content, mode and mtime, as rsync's -o, -g, -X and
 * -A name them. By default what `rsync -aHAXS --numeric-ids` keeps: owners when run as root,
 * groups, extended attributes and POSIX ACLs always (security.* and trusted.* as root only).
 */
import { isRoot } from './xattr-reader.js';

export interface KeepOptions {
  /** Set the primary's file owners (uid); only root may. */
  owner: boolean;
  /** Set the primary's groups (gid). */
  group: boolean;
  /** Copy extended attributes. */
  xattrs: boolean;
  /** Copy POSIX ACLs (access and default; they travel as xattrs). */
  acls: boolean;
}

export function resolveKeep(o: Partial<KeepOptions> = {}): KeepOptions {
  return Object.freeze({ owner: isRoot(), group: true, xattrs: true, acls: true, ...o });
}
