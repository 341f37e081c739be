import { join } from 'node:path';
import type { Epoch } from '@mimic/wire';
import { isLoopbackHost } from '../link/auth.js';
import { SharedLimits } from '../link/bandwidth.js';
import { type ResolvedWanOptions, resolveWan, type WanOptions } from '../link/wan-options.js';
import { NodeCounters, nodeLogger } from '../node/counters.js';
import { AgentError } from '../node/errors.js';
import { type KeepOptions, resolveKeep } from '../node/keep.js';
import type { LeadershipSource } from '../node/leadership.js';
import { type Logger, silentLogger } from '../node/log.js';
import { type ListenAddress, parsePeerUrl, resolveDir } from '../node/options.js';
import { JOURNAL_KEEP_DEFAULT_ROWS } from './journal-retention.js';
import { WATCHER_MODES, type WatcherMode } from './tree-watcher.js';

/** What Primary's callers pass (options, and what the primary uses once defaults are in) and see. */

/** `compress`, `bwlimit` (per mirror) and `bwlimitTotal`: see WanOptions. */
export interface PrimaryOptions extends WanOptions {
  /** The replicated folder. */
  root: string;
  listen: ListenAddress;
  /** State folder (default `<root>/.mimic`). */
  stateDir?: string;
  /** gitignore-style globs of paths not to replicate. */
  exclude?: readonly string[];
  /** Full rescan period, to catch what the watcher missed (default 60 s; 0 disables). */
  rescanIntervalMs?: number;
  /**
   * How the folder is watched (default `auto`): `fanotify`, one mark on the whole filesystem
   * (root only, Linux 5.9 or later; no per-folder watches, so no inotify watch limit); `inotify`,
   * one watch per folder; `auto`, fanotify where it can be set up, else inotify. The `watcher`
   * log line says which runs, and why not fanotify. `fanotify` where it cannot be set up fails
   * start (ERR_FANOTIFY).
   */
  watcher?: WatcherMode;
  /**
   * Most journal rows kept for mirrors that are behind (default 1,000,000); one further behind
   * catches up by manifest. Rows every known mirror has acknowledged go sooner.
   */
  journalKeep?: number;
  /** Other nodes (ws:// URLs) asked every few seconds for their epoch: a higher one fences this primary. */
  peers?: readonly string[];
  /** Shared secret every peer must prove it holds (HMAC challenge and response). */
  token?: Uint8Array;
  /** Certificate and key (PEM) to serve wss:// instead of ws://. */
  tls?: { cert: Buffer; key: Buffer };
  /** CA (PEM) to trust when dialing wss:// peers. */
  tlsCa?: Buffer;
  /** Allow a listener on a non-loopback address without a token. */
  insecure?: boolean;
  /**
   * Serve a folder that has no folder marker yet as a new folder: a new folder id and a marker
   * in the root (`mimic primary --init`). Without it, a root lacking its marker is refused.
   */
  init?: boolean;
  /** With automatic failover: how this primary takes the cluster's leader key (cluster/). */
  leadership?: LeadershipSource;
  /** Which metadata to send beyond content, mode, owners and times (xattrs, ACLs; both by default). */
  keep?: Partial<KeepOptions>;
  log?: Logger;
  /** Where the node counts what it does (/metrics); a promoted mirror hands its own on. */
  counters?: NodeCounters;
}

export interface ResolvedPrimaryOptions extends ResolvedWanOptions {
  readonly root: string;
  readonly listen: ListenAddress;
  readonly stateDir: string;
  readonly exclude: readonly string[];
  readonly rescanIntervalMs: number;
  readonly watcher: WatcherMode;
  readonly journalKeep: number;
  readonly peers: readonly string[];
  readonly token: Uint8Array | null;
  readonly tls: { cert: Buffer; key: Buffer } | null;
  readonly tlsCa: Buffer | null;
  readonly init: boolean;
  readonly keep: KeepOptions;
  readonly leadership: LeadershipSource | null;
  readonly log: Logger;
  readonly counters: NodeCounters;
  /** The bandwidth limits every mirror's link shares, as they are now (see Primary.setBandwidth). */
  readonly links: SharedLimits;
}

/** Fills in the defaults and refuses bad combinations; the result is frozen. */
export function resolveOptions(o: PrimaryOptions): ResolvedPrimaryOptions {
  const root = resolveDir(o.root, 'root');
  if (!o.token && !o.insecure && !isLoopbackHost(o.listen.host)) {
    throw new AgentError(
      'ERR_INSECURE',
      `refusing to listen on ${o.listen.host} without a token: give --token-file, or --insecure to accept anyone who can reach the port`,
    );
  }
  const rescan = o.rescanIntervalMs ?? 60_000;
  if (!Number.isFinite(rescan) || rescan < 0) throw new TypeError('rescanIntervalMs must be >= 0');
  const watcher = o.watcher ?? 'auto';
  if (!WATCHER_MODES.includes(watcher))
    throw new TypeError(`watcher must be one of ${WATCHER_MODES.join(', ')}, not ${JSON.stringify(watcher)}`);
  const journalKeep = o.journalKeep ?? JOURNAL_KEEP_DEFAULT_ROWS;
  if (!Number.isSafeInteger(journalKeep) || journalKeep < 1)
    throw new TypeError('journalKeep must be a whole number of rows, at least 1');
  const counters = o.counters ?? new NodeCounters();
  const wan = resolveWan(o);
  return Object.freeze({
    root,
    listen: Object.freeze({ ...o.listen }),
    stateDir: o.stateDir ? resolveDir(o.stateDir, 'stateDir') : join(root, '.mimic'),
    exclude: Object.freeze([...(o.exclude ?? [])]),
    rescanIntervalMs: rescan,
    watcher,
    journalKeep,
    peers: Object.freeze((o.peers ?? []).map(parsePeerUrl)),
    token: o.token ?? null,
    tls: o.tls ?? null,
    tlsCa: o.tlsCa ?? null,
    init: o.init ?? false,
    keep: resolveKeep(o.keep),
    leadership: o.leadership ?? null,
    log: nodeLogger(o.log ?? silentLogger, counters),
    counters,
    ...wan,
    links: new SharedLimits(wan.bwlimit, wan.bwlimitTotal),
  });
}

export interface MirrorStatus {
  id: string;
  connected: boolean;
  ackedSeq: number;
  bytesSent: number;
  /** Ops sent to it since this process started. */
  opsSent: number;
  /** Journal rows it has not acknowledged, their content bytes, and the age of the oldest. */
  lagOps: number;
  lagBytes: number;
  lagSeconds: number;
  /** The codec its link compresses with (null: none, or not connected). */
  codec: string | null;
}

/** Why a primary stopped: a newer epoch seen, its etcd lease run out, or a switchover. */
export type FenceReason = 'newer-epoch' | 'lease-lost' | 'switchover';

export interface PrimaryStatus {
  role: 'primary' | 'fenced';
  /** When fenced: the newer primary, as far as it is known. */
  fencedBy?: { url: string | null; epoch: Epoch };
  nodeId: string;
  epoch: Epoch;
  /** The identity of the folder served (see folder-marker.ts). */
  folderId: string;
  root: string;
  listen: string;
  /** What watches the folder (null before the watcher starts). */
  watcher: 'fanotify' | 'inotify' | null;
  seq: number;
  files: number;
  /** Rows in the journal now (kept for mirrors that are behind). */
  journalRows: number;
  /** Bandwidth limits in bytes per second, on the wire: per mirror and in total (null: none). */
  bandwidth: { perMirror: number | null; total: number | null };
  mirrors: MirrorStatus[];
}

export interface PrimaryEvents {
  listening: [address: ListenAddress];
  fenced: [by: { url: string | null; epoch: Epoch }, reason: FenceReason];
  appended: [seq: number];
  ack: [mirror: string, seq: number];
  error: [err: Error];
}
