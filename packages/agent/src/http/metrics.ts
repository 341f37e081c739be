/*
 * `/metrics`: the node in Prometheus' text format, with prom-client. Nothing is counted here:
 * each scrape reads the agent's status and counters once (a snapshot) and every metric's
 * `collect` copies its numbers out of that snapshot, so a scrape costs one status() call and
 * the formatting, and the replication paths pay nothing for being observed.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { Mirror } from '../mirror/mirror.js';
import type { MirrorStatus } from '../mirror/mirror-types.js';
import type { NodeCounters } from '../node/counters.js';
import { fsTiming } from '../node/fs-timing.js';
import type { PrimaryStatus } from '../primary/primary-types.js';
import type { AnyAgent } from './status-view.js';

interface Snapshot {
  primary: PrimaryStatus | null;
  mirror: MirrorStatus | null;
  counters: NodeCounters;
}

type Labels = Record<string, string>;
type Read = (s: Snapshot) => [Labels, number][];

/** A metric: name, help, kind, labels, and how to read it from a snapshot. */
type Metric = [name: string, help: string, kind: 'gauge' | 'counter', labels: string[], read: Read];

/** Of any node. */
const NODE_METRICS: Metric[] = [
  [
    'mimic_role',
    'This node\'s role: 1 for the one it has ("primary", "mirror", "fenced").',
    'gauge',
    ['role'],
    (s) => [[{ role: s.primary?.role ?? 'mirror' }, 1]],
  ],
  [
    'mimic_epoch_term',
    'The term of the epoch this node serves or follows.',
    'gauge',
    [],
    (s) => one((s.primary ?? s.mirror)!.epoch.term),
  ],
  [
    'mimic_seq',
    'Last sequence journaled (primary) or applied (mirror).',
    'gauge',
    [],
    (s) => one(s.primary ? s.primary.seq : s.mirror!.appliedSeq),
  ],
  [
    'mimic_manifest_paths',
    "Paths in this node's manifest.",
    'gauge',
    [],
    (s) => one(s.primary ? s.primary.files : s.mirror!.files),
  ],
  [
    'mimic_watcher_events_total',
    'Paths the filesystem watcher reported.',
    'counter',
    [],
    (s) => one(s.counters.watcherEvents),
  ],
  ['mimic_rescans_total', 'Periodic full rescans finished.', 'counter', [], (s) => one(s.counters.rescans)],
  [
    'mimic_rescan_seconds_total',
    'Seconds periodic full rescans worked (their pauses not counted).',
    'counter',
    [],
    (s) => one(s.counters.rescanSeconds),
  ],
  [
    'mimic_fsyncs_total',
    'fsync (files and folders) and syncfs calls made to land files.',
    'counter',
    ['kind'],
    () => [
      [{ kind: 'fsync' }, fsTiming.fsyncs],
      [{ kind: 'syncfs' }, fsTiming.syncfs],
    ],
  ],
  [
    'mimic_fsync_seconds_total',
    'Seconds spent waiting on fsync and syncfs.',
    'counter',
    ['kind'],
    () => [
      [{ kind: 'fsync' }, fsTiming.fsyncSeconds],
      [{ kind: 'syncfs' }, fsTiming.syncfsSeconds],
    ],
  ],
  [
    'mimic_refusals_total',
    'Connections refused (a wrong token, another folder, a fenced primary...), by code.',
    'counter',
    ['code'],
    (s) => keyed(s.counters.refusals.map, 'code'),
  ],
];

/** Of a primary: its journal and each of its mirrors. */
const PRIMARY_METRICS: Metric[] = [
  [
    'mimic_journal_rows',
    'Rows kept in the journal for mirrors that are behind.',
    'gauge',
    [],
    (s) => one(s.primary!.journalRows),
  ],
  [
    'mimic_mirror_connected',
    'Whether the mirror is connected now (primary).',
    'gauge',
    ['mirror'],
    (s) => perMirror(s, (m) => (m.connected ? 1 : 0)),
  ],
  [
    'mimic_mirror_acked_seq',
    'Last sequence the mirror applied durably and acknowledged.',
    'gauge',
    ['mirror'],
    (s) => perMirror(s, (m) => m.ackedSeq),
  ],
  [
    'mimic_mirror_lag_ops',
    'Journal rows the mirror has not acknowledged.',
    'gauge',
    ['mirror'],
    (s) => perMirror(s, (m) => m.lagOps),
  ],
  [
    'mimic_mirror_lag_bytes',
    'File content bytes in the rows the mirror has not acknowledged.',
    'gauge',
    ['mirror'],
    (s) => perMirror(s, (m) => m.lagBytes),
  ],
  [
    'mimic_mirror_lag_seconds',
    'Age of the oldest row the mirror has not acknowledged.',
    'gauge',
    ['mirror'],
    (s) => perMirror(s, (m) => m.lagSeconds),
  ],
  [
    'mimic_mirror_sent_bytes_total',
    'Bytes sent to the mirror (wire bytes, since this process started).',
    'counter',
    ['mirror'],
    (s) => perMirror(s, (m) => m.bytesSent),
  ],
  [
    'mimic_mirror_sent_ops_total',
    'Ops sent to the mirror.',
    'counter',
    ['mirror'],
    (s) => perMirror(s, (m) => m.opsSent),
  ],
  [
    'mimic_mirror_reconnects_total',
    'Connections of the mirror after its first.',
    'counter',
    ['mirror'],
    (s) => perMirror(s, (m) => Math.max(0, s.counters.mirrorConnects.get(m.id) - 1)),
  ],
  [
    'mimic_mirror_errors_total',
    'Errors mirrors reported back (an op they could not apply), by code.',
    'counter',
    ['code'],
    (s) => (s.primary ? keyed(s.counters.mirrorErrors.map, 'code') : []),
  ],
];

/** Of a mirror: the primary it follows, and an initial sync or reconcile under way. */
const MIRROR_METRICS: Metric[] = [
  [
    'mimic_primary_connected',
    'Whether this mirror is connected to its primary.',
    'gauge',
    [],
    (s) => (s.mirror ? one(s.mirror.connected ? 1 : 0) : []),
  ],
  [
    'mimic_lag_ops',
    'Ops received or announced by the primary but not applied yet (mirror).',
    'gauge',
    [],
    (s) => (s.mirror ? one(s.mirror.lagOps) : []),
  ],
  [
    'mimic_lag_seconds',
    'Age of the oldest op received but not applied yet (mirror).',
    'gauge',
    [],
    (s) => (s.mirror ? one(s.mirror.lagSeconds) : []),
  ],
  [
    'mimic_received_bytes_total',
    'Bytes received from primaries (wire bytes).',
    'counter',
    [],
    (s) => (s.mirror ? one(s.mirror.bytesReceived) : []),
  ],
  [
    'mimic_received_ops_total',
    'Ops received from primaries.',
    'counter',
    [],
    (s) => one(s.counters.opsReceived),
  ],
  [
    'mimic_reconnects_total',
    'Connections to a primary after the first (mirror).',
    'counter',
    [],
    (s) => one(Math.max(0, s.counters.connects - 1)),
  ],
  [
    'mimic_apply_failures_total',
    'Ops this mirror could not apply (each ends its connection).',
    'counter',
    [],
    (s) => one(s.counters.applyFailures),
  ],
  // An initial sync or reconcile under way (mirror).
  [
    'mimic_progress_files',
    'Files (or ops) done in the sync under way, of mimic_progress_files_total.',
    'gauge',
    [],
    (s) => progress(s, (p) => p.files),
  ],
  [
    'mimic_progress_files_total',
    'Files (or ops) the sync under way has to do.',
    'gauge',
    [],
    (s) => progress(s, (p) => p.filesTotal),
  ],
  [
    'mimic_progress_bytes',
    'Content bytes done in the sync under way.',
    'gauge',
    [],
    (s) => progress(s, (p) => p.bytes),
  ],
  [
    'mimic_progress_bytes_total',
    'Content bytes the sync under way has to do (0: not known).',
    'gauge',
    [],
    (s) => progress(s, (p) => p.bytesTotal),
  ],
  [
    'mimic_progress_eta_seconds',
    'Estimated seconds left in the sync under way.',
    'gauge',
    [],
    (s) => progress(s, (p) => p.etaSeconds ?? 0),
  ],
];

const one = (v: number): [Labels, number][] => [[{}, v]];

function keyed(map: ReadonlyMap<string, number>, label: string): [Labels, number][] {
  return [...map].map(([k, v]) => [{ [label]: k }, v]);
}

function perMirror(s: Snapshot, f: (m: PrimaryStatus['mirrors'][number]) => number): [Labels, number][] {
  return s.primary ? s.primary.mirrors.map((m) => [{ mirror: m.id }, f(m)]) : [];
}

function progress(s: Snapshot, f: (p: NonNullable<MirrorStatus['progress']>) => number): [Labels, number][] {
  const p = s.mirror?.progress;
  return p ? one(f(p)) : [];
}

/** The registries of one endpoint, reading whichever agent `current()` returns at each scrape. */
export class NodeMetrics {
  /** The process's and every node's metrics; then those of the role the node has now. */
  readonly #node = new Registry();
  readonly #primary = new Registry();
  readonly #mirror = new Registry();
  readonly #current: () => AnyAgent;
  #snap: Snapshot | null = null;

  constructor(current: () => AnyAgent) {
    this.#current = current;
    collectDefaultMetrics({ register: this.#node });
    const snap = () => (this.#snap ??= this.#take());
    register(this.#node, NODE_METRICS, snap);
    register(this.#primary, PRIMARY_METRICS, snap);
    register(this.#mirror, MIRROR_METRICS, snap);
  }

  /** The text exposition: one snapshot of the agent for all of it. */
  async text(): Promise<string> {
    this.#snap = this.#take();
    try {
      const role = this.#snap.primary ? this.#primary : this.#mirror;
      return `${await this.#node.metrics()}\n${await role.metrics()}`;
    } finally {
      this.#snap = null;
    }
  }

  get contentType(): string {
    return this.#node.contentType;
  }

  #take(): Snapshot {
    const agent = this.#current();
    return agent instanceof Mirror
      ? { primary: null, mirror: agent.status(), counters: agent.options.counters }
      : { primary: agent.status(), mirror: null, counters: agent.options.counters };
  }

  /** Every mimic metric: name, kind, labels, help, and which nodes serve it (for the docs). */
  static names(): { name: string; kind: string; labels: string[]; help: string; of: string }[] {
    const list = (metrics: Metric[], of: string) =>
      metrics.map(([name, help, kind, labels]) => ({ name, kind, labels, help, of }));
    return [
      ...list(NODE_METRICS, 'any'),
      ...list(PRIMARY_METRICS, 'primary'),
      ...list(MIRROR_METRICS, 'mirror'),
    ];
  }
}

function register(registry: Registry, metrics: Metric[], snap: () => Snapshot): void {
  for (const [name, help, kind, labelNames, read] of metrics) {
    if (kind === 'gauge') {
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          for (const [labels, v] of read(snap())) this.set(labels, v);
        },
      });
    } else {
      new Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          for (const [labels, v] of read(snap())) this.inc(labels, v);
        },
      });
    }
  }
}
