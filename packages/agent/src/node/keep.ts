/*
 * What a node keeps of each path beyond its content, mode and mtime, as rsync's -o, -g, -X and
 * -A name them. By default what `rsync -aHAXS --numeric-ids` keeps as root: owners, groups,
 * extended attributes and POSIX ACLs (security.* and trusted.* as root only). A mirror that
 * may not set some keeps the rest and says once what it could not.
 */

export interface KeepOptions {
  /** Set the primary's file owners (uid); only root may (others are told once they cannot). */
  owner: boolean;
  /** Set the primary's groups (gid). */
  group: boolean;
  /** Copy extended attributes. */
  xattrs: boolean;
  /** Copy POSIX ACLs (access and default; they travel as xattrs). */
  acls: boolean;
}

export function resolveKeep(o: Partial<KeepOptions> = {}): KeepOptions {
  return Object.freeze({ owner: true, group: true, xattrs: true, acls: true, ...o });
}
