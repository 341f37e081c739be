import { join } from 'node:path';
import type { Epoch } from '@mimic/wire';
import { isLoopbackHost } from '../link/auth.js';
import { type ResolvedWanOptions, resolveWan, type WanOptions } from '../link/wan-options.js';
import { NodeCounters, nodeLogger } from '../node/counters.js';
import { AgentError } from '../node/errors.js';
import { type KeepOptions, resolveKeep } from '../node/keep.js';
import { type Logger, silentLogger } from '../node/log.js';
import { type ListenAddress, parsePeerUrl, resolveDir } from '../node/options.js';
import type { Primary } from '../primary/primary.js';
import type { ProgressView } from './sync-progress.js';

/** What Mirror's callers pass (options, and what the mirror uses once defaults are in) and see. */

/** `compress`, `bwlimit` (what it reads; per mirror once promoted) and `bwlimitTotal`: see WanOptions. */
export interface MirrorOptions extends WanOptions {
  root: string;
  /** Every node this mirror may follow. */
  primaries: readonly string[];
  /** Where to serve once promoted (`promote()` needs it). */
  listen?: ListenAddress;
  /** Shared secret the primary must prove it holds, and this mirror proves in turn. */
  token?: Uint8Array;
  /** CA (PEM) to trust for wss:// primaries. */
  tlsCa?: Buffer;
  /** Certificate and key to serve wss:// with once promoted. */
  tls?: { cert: Buffer; key: Buffer };
  /** Once promoted, allow a non-loopback listener without a token. */
  insecure?: boolean;
  stateDir?: string;
  /** Which of the primary's owners, groups, xattrs and ACLs to set (by default all, owners as root). */
  keep?: Partial<KeepOptions>;
  log?: Logger;
  /** Where the node counts what it does (/metrics); a promoted mirror hands its own on. */
  counters?: NodeCounters;
}

export interface ResolvedMirrorOptions extends ResolvedWanOptions {
  readonly root: string;
  readonly primaries: readonly string[];
  readonly listen: ListenAddress | null;
  readonly token: Uint8Array | null;
  readonly tlsCa: Buffer | null;
  readonly tls: { cert: Buffer; key: Buffer } | null;
  readonly insecure: boolean;
  readonly stateDir: string;
  readonly keep: KeepOptions;
  readonly log: Logger;
  readonly counters: NodeCounters;
}

export interface MirrorStatus {
  role: 'mirror';
  nodeId: string;
  epoch: Epoch;
  root: string;
  following: string | null;
  connected: boolean;
  appliedSeq: number;
  /** Paths in this mirror's manifest. */
  files: number;
  bytesReceived: number;
  /** Ops received since this process started. */
  opsReceived: number;
  /** Ops received (or announced in the welcome) but not applied yet, and the age of the oldest. */
  lagOps: number;
  lagSeconds: number;
  /** An initial sync, reconcile or long catch-up under way. */
  progress: ProgressView | null;
  /** The codec the primary's messages come compressed with (null: none, or not connected). */
  codec: string | null;
  /** Most bytes per second read from the primary, on the wire (null: no limit). */
  bandwidth: { receive: number | null };
  diverged: number;
  /** The folder this mirror holds; null until it first follows a primary. */
  folderId: string | null;
  lastError: string | null;
  /** Why the last connection was refused, and what to do about it; null once a primary is followed. */
  refused: { code: string; message: string; hint: string; since: string } | null;
  /** What of the primary's metadata this mirror could not set (`owner`, `group`: not root). */
  notKept: string[];
}

/** Why a mirror was promoted: promote-mirror, a failover on etcd, or a planned switchover. */
export type PromoteReason = 'manual' | 'failover' | 'switchover';

export interface MirrorEvents {
  connected: [url: string];
  /** Initial sync or catch-up by manifest: files fetched so far, of how many. */
  progress: [fetched: number, total: number];
  promoted: [primary: Primary, reason: PromoteReason];
  disconnected: [reason: string];
  applied: [seq: number];
  error: [err: Error];
}

export function resolveOptions(o: MirrorOptions): ResolvedMirrorOptions {
  const root = resolveDir(o.root, 'root');
  if (!o.primaries || o.primaries.length === 0)
    throw new TypeError('primaries: at least one URL is required');
  if (o.listen && !o.token && !o.insecure && !isLoopbackHost(o.listen.host)) {
    throw new AgentError(
      'ERR_INSECURE',
      `refusing to serve on ${o.listen.host} once promoted without a token: give --token-file, or --insecure`,
    );
  }
  const counters = o.counters ?? new NodeCounters();
  return Object.freeze({
    root,
    primaries: Object.freeze(o.primaries.map(parsePeerUrl)),
    listen: o.listen ? Object.freeze({ ...o.listen }) : null,
    token: o.token ?? null,
    tlsCa: o.tlsCa ?? null,
    tls: o.tls ?? null,
    insecure: o.insecure ?? false,
    stateDir: o.stateDir ? resolveDir(o.stateDir, 'stateDir') : join(root, '.mimic'),
    keep: resolveKeep(o.keep),
    log: nodeLogger(o.log ?? silentLogger, counters),
    counters,
    ...resolveWan(o),
  });
}
