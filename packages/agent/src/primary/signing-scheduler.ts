import { join } from 'node:path';
import { encodeSignature, signature } from '@mimic/delta';
import { readFileVersion } from '../node/local-fs.js';
import type { Store } from '../node/store.js';
import { PART_BYTES, type WriteSource } from './write-parts.js';

/** Versions are signed after the sender has sent nothing for this long, in slices this long. */
export const QUIET_MS = 100;
export const SIGN_SLICE_MS = 20;
/** Most content held for signing later; past it, versions waiting are re-read when signed. */
export const MAX_TO_SIGN_BYTES = 32 * 1024 * 1024;
/** Most versions waiting to be signed; past it, a file's next change travels whole. */
export const MAX_TO_SIGN = 200_000;

/**
 * The block signatures of the versions one mirror was sent whole, made when there is time: a
 * file's next change then travels as a delta against them. A version waits with its content
 * while that fits in MAX_TO_SIGN_BYTES, else with its path (re-read when signed, and dropped if
 * the file no longer holds it). The session signs a slice at a time when it is quiet (see
 * `due`), or one version at once when the next change of its file needs the signature.
 * Signatures go to the store, shared by every mirror.
 */
export class SigningScheduler {
  readonly #store: Store;
  readonly #root: string;
  /** Versions waiting, by hash: their content, or the path to read it from. */
  #toSign = new Map<string, Uint8Array | string>();
  #toSignBytes = 0;

  constructor(store: Store, root: string) {
    this.#store = store;
    this.#root = root;
  }

  /** How many versions wait to be signed. */
  get waiting(): number {
    return this.#toSign.size;
  }

  /** Bytes of content held for them. */
  get heldBytes(): number {
    return this.#toSignBytes;
  }

  /** Where write-parts hands the signatures (or the content to sign later) of what it sent. */
  readonly sink: NonNullable<WriteSource['sign']> = {
    later: (path, hash, content) => this.later(path, hash, content),
    keep: (hash, sig) => this.#store.putSignature(hash, sig),
  };

  /**
   * Whether to sign a slice now: versions wait, nothing was sent since `sentAt` for QUIET_MS,
   * and `idle` (nothing being journaled, everything sent acknowledged), so that signing takes
   * no CPU from a transfer (an initial sync signs at its end).
   */
  due(sentAt: number, idle: boolean): boolean {
    return this.#toSign.size > 0 && Date.now() - sentAt >= QUIET_MS && idle;
  }

  /** Remembers a version sent whole for signing later: its content while that fits, else its path. */
  later(path: string, hash: string, content: Uint8Array): void {
    if (this.#toSign.has(hash) || this.#toSign.size >= MAX_TO_SIGN) return;
    if (this.#toSignBytes + content.length <= MAX_TO_SIGN_BYTES) {
      this.#toSign.set(hash, content);
      this.#toSignBytes += content.length;
    } else {
      this.#toSign.set(hash, path);
    }
  }

  /**
   * Signs some of the versions waiting, for at most SIGN_SLICE_MS, so that new work never waits
   * long behind it.
   */
  async slice(): Promise<void> {
    const until = Date.now() + SIGN_SLICE_MS;
    for (const hash of this.#toSign.keys()) {
      await this.now(hash);
      if (Date.now() >= until) return;
    }
  }

  /**
   * The signature of a version waiting, made and kept now; undefined if none is waiting, or if
   * the file no longer holds that version (its next change then travels whole).
   */
  async now(hash: string): Promise<Uint8Array | undefined> {
    const held = this.#toSign.get(hash);
    if (held === undefined) return undefined;
    this.#toSign.delete(hash);
    if (typeof held !== 'string') this.#toSignBytes -= held.length;
    const known = this.#store.getSignature(hash);
    if (known) return known;
    let content: Uint8Array | undefined;
    if (typeof held === 'string') {
      const v = await readFileVersion(join(this.#root, held), PART_BYTES);
      if (v?.hash === hash) content = v.content;
    } else content = held;
    if (!content) return undefined;
    const sig = encodeSignature(signature(content));
    this.#store.putSignature(hash, sig);
    return sig;
  }
}
