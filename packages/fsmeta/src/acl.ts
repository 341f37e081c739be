/*
 * POSIX ACLs as Linux stores them in the system.posix_acl_access and system.posix_acl_default
 * attributes: a 4-byte version (2), then 8-byte entries of tag (u16), permissions (u16) and id
 * (u32), all little-endian. A copy moves these bytes as they are (the ids are numeric, as
 * rsync --numeric-ids keeps them); this codec reads them for logs, status and tests.
 */

export const ACL_ACCESS = 'system.posix_acl_access';
export const ACL_DEFAULT = 'system.posix_acl_default';

const VERSION = 2;
const TAGS = { user_obj: 0x01, user: 0x02, group_obj: 0x04, group: 0x08, mask: 0x10, other: 0x20 } as const;
export type AclTag = keyof typeof TAGS;
const TAG_NAMES = new Map<number, AclTag>(Object.entries(TAGS).map(([k, v]) => [v, k as AclTag]));
/** The id stored for entries that have none (owner, owning group, mask, other). */
const NO_ID = 0xffffffff;
/** Linux keeps an ACL within one attribute value (64 KiB): at most this many entries. */
export const MAX_ACL_ENTRIES = 8191;

export interface AclEntry {
  tag: AclTag;
  /** Numeric user or group id, for `user` and `group` entries only. */
  id?: number;
  /** rwx as bits 4, 2, 1. */
  perm: number;
}

export class AclError extends Error {
  readonly code = 'ERR_BAD_ACL';
}

export function encodeAcl(entries: readonly AclEntry[]): Buffer {
  if (entries.length > MAX_ACL_ENTRIES)
    throw new AclError(`acl: ${entries.length} entries, more than ${MAX_ACL_ENTRIES}`);
  const out = Buffer.alloc(4 + 8 * entries.length);
  out.writeUInt32LE(VERSION, 0);
  entries.forEach((e, i) => {
    const named = e.tag === 'user' || e.tag === 'group';
    if (named !== (e.id !== undefined))
      throw new AclError(`acl: entry ${i} (${e.tag}) ${named ? 'needs' : 'takes no'} id`);
    if (!Number.isInteger(e.perm) || e.perm < 0 || e.perm > 7)
      throw new AclError(`acl: entry ${i} perm ${e.perm} is not 0-7`);
    if (named && (!Number.isInteger(e.id) || (e.id as number) < 0 || (e.id as number) >= NO_ID))
      throw new AclError(`acl: entry ${i} id ${e.id} is not a 32-bit id`);
    out.writeUInt16LE(TAGS[e.tag], 4 + 8 * i);
    out.writeUInt16LE(e.perm, 6 + 8 * i);
    out.writeUInt32LE(named ? (e.id as number) : NO_ID, 8 + 8 * i);
  });
  return out;
}

export function decodeAcl(bytes: Uint8Array): AclEntry[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 4 || (b.length - 4) % 8 !== 0)
    throw new AclError(`acl: ${b.length} bytes is not a header and whole entries`);
  const version = b.readUInt32LE(0);
  if (version !== VERSION) throw new AclError(`acl: version ${version}, expected ${VERSION}`);
  const entries: AclEntry[] = [];
  for (let at = 4; at < b.length; at += 8) {
    const tag = TAG_NAMES.get(b.readUInt16LE(at));
    if (!tag) throw new AclError(`acl: unknown tag 0x${b.readUInt16LE(at).toString(16)} at byte ${at}`);
    const perm = b.readUInt16LE(at + 2);
    if (perm > 7) throw new AclError(`acl: perm ${perm} at byte ${at + 2} is not 0-7`);
    const id = b.readUInt32LE(at + 4);
    entries.push(tag === 'user' || tag === 'group' ? { tag, id, perm } : { tag, perm });
  }
  return entries;
}

/** getfacl's short form: `user::rwx,user:33:rw-,group::r-x,mask::rwx,other::r--`. */
export function formatAcl(entries: readonly AclEntry[]): string {
  const rwx = (p: number) => `${p & 4 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 1 ? 'x' : '-'}`;
  const kind = (t: AclTag) => (t.startsWith('user') ? 'user' : t.startsWith('group') ? 'group' : t);
  return entries.map((e) => `${kind(e.tag)}:${e.id ?? ''}:${rwx(e.perm)}`).join(',');
}
