/*
 * The flags of slow links, shared by `mimic primary` and `mimic mirror`: compression and
 * bandwidth limits in KiB per second, as rsync's --compress and --bwlimit. A primary's limits
 * apply to what it sends each mirror and all of them; a mirror's --bwlimit to what it reads
 * (and, once promoted, like a primary's).
 */
import type { Command } from 'commander';
import { CliError } from './fail.js';

export interface WanFlags {
  compress?: boolean;
  bwlimit?: string;
  bwlimitTotal?: string;
}

/** What the agent takes: limits in bytes per second. */
export interface WanAgentOptions {
  compress?: boolean;
  bwlimit?: number;
  bwlimitTotal?: number;
}

export function wanFlags(cmd: Command): Command {
  return cmd
    .option(
      '--compress',
      'compress messages on the links (zstd where Node has it, else brotli); incompressible data goes as is',
    )
    .option(
      '--bwlimit <KiB/s>',
      'most KiB per second on each link, on the wire: sent to each mirror (a mirror: read from its primary)',
    )
    .option('--bwlimit-total <KiB/s>', 'most KiB per second sent to all mirrors together');
}

/** A limit in KiB per second, as given on the command line, in bytes per second. */
export function kibPerSecond(flag: string, value: string): number {
  const n = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!(n > 0) || !Number.isFinite(n))
    throw new CliError('ERR_INVALID_ARGUMENT', `${flag} ${value}: expected KiB per second > 0`);
  return Math.max(1, Math.round(n * 1024));
}

/** The agent options of the WAN flags; a bad value is a CliError naming the flag. */
export function wanOf(o: WanFlags): WanAgentOptions {
  return {
    ...(o.compress ? { compress: true } : {}),
    ...(o.bwlimit !== undefined ? { bwlimit: kibPerSecond('--bwlimit', o.bwlimit) } : {}),
    ...(o.bwlimitTotal !== undefined
      ? { bwlimitTotal: kibPerSecond('--bwlimit-total', o.bwlimitTotal) }
      : {}),
  };
}
