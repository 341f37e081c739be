import { checkRate } from './bandwidth.js';

/** The options of a slow link, the same for both roles (see PrimaryOptions and MirrorOptions). */
export interface WanOptions {
  /**
   * Ask for compressed messages (zstd where this Node has it, else brotli, else deflate); a
   * primary compresses for a mirror when either of them asks. Incompressible content goes as is.
   */
  compress?: boolean;
  /**
   * Most bytes per second on each link, counted on the wire (after compression): what a primary
   * sends each mirror, what a mirror reads from its primary (and sends each mirror once promoted).
   */
  bwlimit?: number;
  /** Most bytes per second a primary sends all its mirrors together (a mirror: once promoted). */
  bwlimitTotal?: number;
}

export interface ResolvedWanOptions {
  readonly compress: boolean;
  readonly bwlimit: number | null;
  readonly bwlimitTotal: number | null;
}

/** Defaults in; a limit that is not a positive number of bytes per second throws TypeError. */
export function resolveWan(o: WanOptions): ResolvedWanOptions {
  return {
    compress: o.compress ?? false,
    bwlimit: checkRate(o.bwlimit, 'bwlimit'),
    bwlimitTotal: checkRate(o.bwlimitTotal, 'bwlimitTotal'),
  };
}
