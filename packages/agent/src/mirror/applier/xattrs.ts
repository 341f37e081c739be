/*
 * Extended attributes on the mirror: made exactly the primary's within what both sides copy.
 * The primary's welcome says whether it sends them (and ACLs, and the security and trusted
 * namespaces); this mirror's own flags and rights narrow that. A mirror that may not set some (not root, or a
 * file system without them) keeps what it can and says once what it could not.
 */
import {
  copies,
  decodeXattrs,
  encodeXattrs,
  readXattrs,
  writeXattrs,
  type Xattr,
  type XattrPolicy,
} from '@mimic/fsmeta';
import type { WelcomeMessage } from '@mimic/wire';
import { sameXattrs } from '../../node/local-fs.js';
import type { Logger } from '../../node/log.js';
import { isRoot, type XattrOptions } from '../../node/xattr-reader.js';
import { ApplyError } from './errors.js';

/** Refusals that mean "not here", not a fault: noted once, the file still lands. */
const NOT_HERE = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES']);

export class MirrorXattrs {
  /** This mirror's flags (rsync -X, -A). */
  options: XattrOptions = { xattrs: true, acls: true };
  #policy: XattrPolicy | null = null;
  readonly #log: Logger;
  #denied = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** What the primary's welcome said it sends; until then, and without it, none are touched. */
  set peer(sent: WelcomeMessage['xattrs']) {
    const o = this.options;
    this.#policy =
      sent && o.xattrs
        ? {
            privileged: sent.privileged && isRoot(),
            acls: sent.acls && o.acls,
            maxBytes: Number.MAX_SAFE_INTEGER,
          }
        : null;
  }

  get active(): boolean {
    return this.#policy !== null;
  }

  /** Makes the attributes of `abs` (the link itself) those of `encoded` (absent: none). */
  set(abs: string, encoded: Uint8Array | undefined): void {
    const policy = this.#policy;
    if (!policy) return;
    const wanted = this.#wanted(abs, encoded, policy);
    try {
      writeXattrs(abs, wanted, policy);
    } catch (err) {
      if (!NOT_HERE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      if (this.#denied) return;
      this.#denied = true;
      this.#log('xattrs-not-kept', { path: abs, error: (err as Error).message });
    }
  }

  /** Whether what `abs` carries differs from `encoded`, within what this mirror keeps. */
  differs(abs: string, encoded: Uint8Array | undefined): boolean {
    const policy = this.#policy;
    if (!policy) return false;
    const wanted = this.#wanted(abs, encoded, policy);
    try {
      return !sameXattrs(encodeXattrs(readXattrs(abs, policy)), encodeXattrs(wanted));
    } catch {
      return wanted.length > 0;
    }
  }

  /** The primary's list, as much of it as this mirror keeps; a malformed list fails the op. */
  #wanted(abs: string, encoded: Uint8Array | undefined, policy: XattrPolicy): Xattr[] {
    if (encoded === undefined) return [];
    try {
      return decodeXattrs(encoded).filter(([name]) => copies(name, policy));
    } catch (err) {
      throw new ApplyError(`${abs}: ${(err as Error).message}`);
    }
  }

  /** `xattrs` when some could not be set here. */
  get notKept(): string[] {
    return this.#denied ? ['xattrs'] : [];
  }
}
