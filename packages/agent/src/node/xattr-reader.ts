/*
 * Extended attributes as a primary reads them to send: the sorted list a path carries within
 * what this node copies (user.* always; POSIX ACLs unless turned off; security.* and trusted.*
 * as root), in the canonical encoding the wire carries. Reading costs one llistxattr for a path
 * that has none, which is the common case.
 */
import { encodeXattrs, readXattrs, XattrError, type XattrPolicy } from '@mimic/fsmeta';
import type { Logger } from './log.js';

/** Which attributes a node copies (rsync -X and -A; both on by default). */
export interface XattrOptions {
  xattrs: boolean;
  acls: boolean;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/** The fsmeta policy for `o` on this process, or null when no attribute is copied. */
export function xattrPolicy(o: XattrOptions): XattrPolicy | null {
  return o.xattrs ? { privileged: isRoot(), acls: o.acls } : null;
}

/** Errors that mean "this path has none we can read", not a fault of the node. */
const NONE = new Set(['ENOENT', 'ENOTDIR', 'ENOTSUP', 'EOPNOTSUPP', 'ELOOP']);

export class XattrReader {
  readonly policy: XattrPolicy | null;
  readonly #log: Logger;

  constructor(options: XattrOptions, log: Logger) {
    this.policy = xattrPolicy(options);
    this.#log = log;
  }

  /** What the welcome tells a mirror this node sends. */
  get announced(): { acls: boolean; privileged: boolean } | undefined {
    const p = this.policy;
    return p ? { acls: p.acls, privileged: p.privileged } : undefined;
  }

  /**
   * The encoded attributes of `abs` (the link itself), or undefined for none. A list over the
   * bound is logged and sent as none rather than failing the file: its content still travels.
   */
  read(abs: string): Uint8Array | undefined {
    if (!this.policy) return undefined;
    try {
      const list = readXattrs(abs, this.policy);
      return list.length === 0 ? undefined : encodeXattrs(list);
    } catch (err) {
      if (err instanceof XattrError) {
        this.#log('xattrs-not-sent', { path: abs, error: err.message });
        return undefined;
      }
      if (NONE.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw err;
    }
  }
}
