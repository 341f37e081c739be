/*
 * Extended attributes of one path (the link itself, never what it points to), read and set as
 * a sorted list within the namespaces a node may copy: `user.*` always; `security.*`,
 * `trusted.*` and the POSIX ACLs (`system.posix_acl_*`) where the node runs as root and asks
 * for them. A path's attributes are bounded in total; past the bound reading refuses, so that
 * one file cannot fill a batch or the store.
 */
import { ACL_ACCESS, ACL_DEFAULT } from './acl.js';
import { native } from './native.js';

/** One attribute: its full name (namespace included) and its value. */
export type Xattr = readonly [name: string, value: Buffer];

export interface XattrPolicy {
  /** security.* and trusted.* (root only on Linux). */
  privileged: boolean;
  /** system.posix_acl_access and system.posix_acl_default. */
  acls: boolean;
  /** Names plus values of one path, in bytes; more is refused (default 256 KiB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_XATTR_BYTES = 256 * 1024;

export class XattrError extends Error {
  readonly code: 'ERR_XATTR_TOO_LARGE' | 'ERR_BAD_XATTRS';
  readonly path: string;
  constructor(code: XattrError['code'], path: string, message: string) {
    super(message);
    this.code = code;
    this.path = path;
  }
}

/** Whether the policy copies an attribute of this name. */
export function copies(name: string, policy: XattrPolicy): boolean {
  if (name.startsWith('user.')) return true;
  if (name === ACL_ACCESS || name === ACL_DEFAULT) return policy.acls;
  if (name.startsWith('security.') || name.startsWith('trusted.')) return policy.privileged;
  return false;
}

/** The attributes of `path` that the policy copies, sorted by name. */
export function readXattrs(path: string, policy: XattrPolicy): Xattr[] {
  const max = policy.maxBytes ?? DEFAULT_MAX_XATTR_BYTES;
  const names = native
    .listXattrs(path)
    .filter((n) => copies(n, policy))
    .sort();
  const out: Xattr[] = [];
  let bytes = 0;
  for (const name of names) {
    const value = native.getXattr(path, name);
    if (value === null) continue; // removed between the list and the read
    bytes += Buffer.byteLength(name) + value.length;
    if (bytes > max)
      throw new XattrError('ERR_XATTR_TOO_LARGE', path, `${path}: extended attributes exceed ${max} bytes`);
    out.push([name, value]);
  }
  return out;
}

/**
 * Makes the copied attributes of `path` exactly `wanted`: sets what differs, removes what the
 * policy copies and `wanted` lacks, leaves the rest (another namespace) alone. Returns whether
 * anything changed.
 */
export function writeXattrs(path: string, wanted: readonly Xattr[], policy: XattrPolicy): boolean {
  const have = new Map(readXattrs(path, { ...policy, maxBytes: Number.MAX_SAFE_INTEGER }));
  let changed = false;
  for (const [name, value] of wanted) {
    if (!copies(name, policy)) continue;
    if (have.get(name)?.equals(value)) {
      have.delete(name);
      continue;
    }
    native.setXattr(path, name, value);
    have.delete(name);
    changed = true;
  }
  for (const name of have.keys()) changed = native.removeXattr(path, name) || changed;
  return changed;
}

/*
 * The canonical bytes of a sorted attribute list, for the manifest and the wire: a count, then
 * for each a name length (u16), the name, a value length (u32) and the value; big-endian. Two
 * paths have the same attributes exactly when these bytes are equal.
 */
export function encodeXattrs(list: readonly Xattr[]): Buffer {
  const parts: Buffer[] = [u32(list.length)];
  let previous = '';
  for (const [name, value] of list) {
    if (name <= previous && parts.length > 1)
      throw new XattrError('ERR_BAD_XATTRS', name, `xattrs: ${name} out of order`);
    previous = name;
    const n = Buffer.from(name);
    if (n.length === 0 || n.length > 255)
      throw new XattrError('ERR_BAD_XATTRS', name, `xattrs: name of ${n.length} bytes`);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(n.length);
    parts.push(len, n, u32(value.length), value);
  }
  return Buffer.concat(parts);
}

export function decodeXattrs(bytes: Uint8Array, maxBytes = DEFAULT_MAX_XATTR_BYTES): Xattr[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (what: string) => new XattrError('ERR_BAD_XATTRS', '', `xattrs: ${what}`);
  if (b.length > maxBytes + 4 + 6 * 1024) throw bad(`${b.length} bytes, more than the bound`);
  if (b.length < 4) throw bad('shorter than its count');
  const count = b.readUInt32BE(0);
  const out: Xattr[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 2 > b.length) throw bad(`entry ${i} cut short`);
    const nameLen = b.readUInt16BE(at);
    if (nameLen === 0 || nameLen > 255 || at + 2 + nameLen + 4 > b.length)
      throw bad(`entry ${i} name cut short`);
    const name = b.toString('utf8', at + 2, at + 2 + nameLen);
    at += 2 + nameLen;
    const valueLen = b.readUInt32BE(at);
    if (at + 4 + valueLen > b.length) throw bad(`entry ${i} value cut short`);
    if (out.length > 0 && name <= out[out.length - 1]![0]) throw bad(`${name} out of order`);
    out.push([name, Buffer.from(b.subarray(at + 4, at + 4 + valueLen))]);
    at += 4 + valueLen;
  }
  if (at !== b.length) throw bad(`${b.length - at} bytes after the last entry`);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
