/*
 * What a node's HTTP endpoint says about it: `/api/status` (the status page's data) and
 * `/readyz`, built from the agent's own status each time it is asked. Rates come from samples
 * of each peer's byte count over the last RATE_WINDOW_MS.
 */
import type { Epoch } from '@mimic/wire';
import { Mirror } from '../mirror/mirror.js';
import type { MirrorStatus } from '../mirror/mirror-types.js';
import type { ProgressView } from '../mirror/sync-progress.js';
import type { Problem } from '../node/counters.js';
import type { PrimaryStatus } from '../primary/primary-types.js';

/** The agent an endpoint answers for: the one running now (a promotion replaces it). */
export type AnyAgent = import('../primary/primary.js').Primary | Mirror;

export interface ReadyRules {
  /** A mirror is ready while connected and at most this many seconds behind (default 10). */
  readyLagSeconds: number;
  /** A primary is ready while it leads and this many mirrors are in step (default 0). */
  readyMirrors: number;
}

export interface PeerView {
  id: string;
  kind: 'mirror' | 'primary';
  url: string | null;
  connected: boolean;
  seq: number;
  lagOps: number;
  lagBytes: number;
  lagSeconds: number;
  rateBytesPerSec: number;
  bytes: number;
}

export interface StatusView {
  time: string;
  role: 'primary' | 'fenced' | 'mirror';
  nodeId: string;
  epoch: Epoch;
  root: string;
  folderId: string | null;
  seq: number;
  fencedBy: { url: string | null; epoch: Epoch } | null;
  ready: boolean;
  readyReason: string;
  peers: PeerView[];
  progress: ProgressView | null;
  errors: Problem[];
}

const RATE_WINDOW_MS = 10_000;
/** Peers whose rate is remembered at most. */
const MAX_RATED = 1024;

/** Bytes per second of each peer over the last RATE_WINDOW_MS, from the samples it was given. */
export class PeerRates {
  readonly #samples = new Map<string, { t: number; bytes: number }[]>();

  sample(key: string, bytes: number, now = Date.now()): number {
    let s = this.#samples.get(key);
    if (!s) {
      if (this.#samples.size >= MAX_RATED) this.#samples.delete(this.#samples.keys().next().value!);
      s = [];
      this.#samples.set(key, s);
    }
    const last = s[s.length - 1];
    // A count that went down is a new connection's: start over.
    if (last && bytes < last.bytes) s.length = 0;
    if (!last || now - last.t >= 200 || bytes < last.bytes) s.push({ t: now, bytes });
    while (s.length > 2 && now - s[0]!.t > RATE_WINDOW_MS) s.shift();
    const first = s[0]!;
    const dt = (now - first.t) / 1000;
    return dt > 0 ? Math.round((bytes - first.bytes) / dt) : 0;
  }
}

/** The status of `agent` for the status page, with whether it is ready and why. */
export function statusView(agent: AnyAgent, rules: ReadyRules, rates: PeerRates): StatusView {
  const errors = [...agent.options.counters.problems].reverse();
  const time = new Date().toISOString();
  if (agent instanceof Mirror) {
    const st = agent.status();
    const { ready, reason } = mirrorReady(st, rules);
    const peers: PeerView[] = st.following
      ? [
          {
            id: st.connected ? st.epoch.node : '',
            kind: 'primary',
            url: st.following,
            connected: st.connected,
            seq: st.appliedSeq,
            lagOps: st.lagOps,
            lagBytes: 0,
            lagSeconds: st.lagSeconds,
            rateBytesPerSec: rates.sample(`primary ${st.following}`, st.bytesReceived),
            bytes: st.bytesReceived,
          },
        ]
      : [];
    return {
      time,
      role: 'mirror',
      nodeId: st.nodeId,
      epoch: st.epoch,
      root: st.root,
      folderId: st.folderId,
      seq: st.appliedSeq,
      fencedBy: null,
      ready,
      readyReason: reason,
      peers,
      progress: st.progress,
      errors,
    };
  }
  const st = agent.status();
  const { ready, reason } = primaryReady(st, rules);
  return {
    time,
    role: st.role,
    nodeId: st.nodeId,
    epoch: st.epoch,
    root: st.root,
    folderId: st.folderId,
    seq: st.seq,
    fencedBy: st.fencedBy ?? null,
    ready,
    readyReason: reason,
    peers: st.mirrors.map((m) => ({
      id: m.id,
      kind: 'mirror',
      url: null,
      connected: m.connected,
      seq: m.ackedSeq,
      lagOps: m.lagOps,
      lagBytes: m.lagBytes,
      lagSeconds: m.lagSeconds,
      rateBytesPerSec: rates.sample(`mirror ${m.id}`, m.bytesSent),
      bytes: m.bytesSent,
    })),
    progress: null,
    errors,
  };
}

/** Whether `agent` should receive traffic now, and why (or why not). */
export function readiness(agent: AnyAgent, rules: ReadyRules): { ready: boolean; reason: string } {
  return agent instanceof Mirror ? mirrorReady(agent.status(), rules) : primaryReady(agent.status(), rules);
}

function mirrorReady(st: MirrorStatus, rules: ReadyRules): { ready: boolean; reason: string } {
  if (!st.connected || !st.following) return { ready: false, reason: 'not connected to a primary' };
  if (st.progress) return { ready: false, reason: `${st.progress.phase} under way` };
  if (st.lagSeconds > rules.readyLagSeconds)
    return {
      ready: false,
      reason: `following ${st.following}, ${st.lagSeconds.toFixed(1)} s behind (more than ${rules.readyLagSeconds} s)`,
    };
  return { ready: true, reason: `following ${st.following} within ${st.lagSeconds.toFixed(1)} s` };
}

function primaryReady(st: PrimaryStatus, rules: ReadyRules): { ready: boolean; reason: string } {
  if (st.role === 'fenced') return { ready: false, reason: 'fenced: a newer primary leads' };
  const inStep = st.mirrors.filter((m) => m.connected && m.lagSeconds <= rules.readyLagSeconds).length;
  const reason = `${inStep} of ${st.mirrors.length} mirrors in step (${rules.readyMirrors} required)`;
  return { ready: inStep >= rules.readyMirrors, reason };
}
