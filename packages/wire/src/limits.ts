/** Caps applied to every message encoded or decoded. */
export interface WireLimits {
  /** Largest encoded message, in bytes; checked before any decoding. */
  readonly maxMessageBytes: number;
  /** Largest path, in UTF-8 bytes; at most {@link MAX_PATH_BYTES}. */
  readonly maxPathBytes: number;
  /** Most entries in one manifest page. */
  readonly maxManifestEntries: number;
}

/** What callers may pass: any subset of the limits, the rest taken from {@link DEFAULT_LIMITS}. */
export type WireLimitsOptions = Partial<WireLimits>;

/** Hard ceiling for paths and symlink targets (Linux `PATH_MAX`). */
export const MAX_PATH_BYTES = 4096;

export const DEFAULT_LIMITS: WireLimits = Object.freeze({
  maxMessageBytes: 8 * 1024 * 1024,
  maxPathBytes: MAX_PATH_BYTES,
  maxManifestEntries: 10_000,
});

const RESOLVED = new WeakSet<WireLimits>([DEFAULT_LIMITS]);

/**
 * Spreads the defaults into `options`, checks the result and freezes it. Throws `TypeError` for a
 * limit that is not a positive safe integer, or a `maxPathBytes` above {@link MAX_PATH_BYTES}.
 * Resolving an already resolved object returns it unchanged.
 */
export function resolveLimits(options?: WireLimitsOptions): WireLimits {
  if (options === undefined) return DEFAULT_LIMITS;
  if (RESOLVED.has(options as WireLimits)) return options as WireLimits;
  const limits: WireLimits = {
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_LIMITS.maxMessageBytes,
    maxPathBytes: options.maxPathBytes ?? DEFAULT_LIMITS.maxPathBytes,
    maxManifestEntries: options.maxManifestEntries ?? DEFAULT_LIMITS.maxManifestEntries,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`${name}: expected a positive safe integer, got ${String(value)}`);
    }
  }
  if (limits.maxPathBytes > MAX_PATH_BYTES) {
    throw new TypeError(`maxPathBytes: at most ${MAX_PATH_BYTES}, got ${limits.maxPathBytes}`);
  }
  const frozen = Object.freeze(limits);
  RESOLVED.add(frozen);
  return frozen;
}
