/*
 * The --on-promote and --on-demote hooks: a shell command run when this node becomes the
 * primary, or stops being it, with what happened in its environment:
 *   MIMIC_ACTION      promote | demote
 *   MIMIC_ROLE        the role now (primary, fenced)
 *   MIMIC_REASON      failover | switchover | manual | lease-lost | newer-epoch
 *   MIMIC_CLUSTER     the --cluster name (empty without one)
 *   MIMIC_NODE_ID     this node's id
 *   MIMIC_TERM        the term of the epoch concerned (MIMIC_EPOCH too, as before)
 *   MIMIC_LEADER_URL  the primary's URL as far as known (this node's, after a promotion)
 *   MIMIC_LISTEN      this node's listen URL
 */
import { spawn } from 'node:child_process';
import type { Primary } from '@mimic/agent';

export interface HookEvent {
  action: 'promote' | 'demote';
  role: string;
  reason: string;
  cluster: string | null;
  nodeId: string;
  term: number;
  epochNode: string;
  leaderUrl: string | null;
  listen: string;
}

/** Runs `cmd`; `done` gets its exit code (null: killed or not started). */
export function runHook(cmd: string, e: HookEvent, done?: (code: number | null) => void): void {
  const child = spawn(cmd, {
    shell: true,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      MIMIC_ACTION: e.action,
      MIMIC_ROLE: e.role,
      MIMIC_REASON: e.reason,
      MIMIC_CLUSTER: e.cluster ?? '',
      MIMIC_NODE_ID: e.nodeId,
      MIMIC_TERM: String(e.term),
      MIMIC_EPOCH: String(e.term),
      MIMIC_EPOCH_NODE: e.epochNode,
      MIMIC_LEADER_URL: e.leaderUrl ?? '',
      MIMIC_LISTEN: e.listen,
    },
  });
  const finish = (code: number | null) => {
    process.stderr.write(
      `${JSON.stringify({ time: new Date().toISOString(), event: `on-${e.action}-done`, cmd, code })}\n`,
    );
    done?.(code);
  };
  child.on('error', () => finish(null));
  child.on('exit', (code) => finish(code));
}

/** What a hook is told of `primary` (see hooks.ts). */
export function hookEvent(
  primary: Primary,
  action: HookEvent['action'],
  reason: string,
  cluster: string | null,
  leaderUrl?: string | null,
): HookEvent {
  const s = primary.status();
  const listen = s.listen;
  return {
    action,
    role: s.role,
    reason,
    cluster,
    nodeId: s.nodeId,
    term: s.epoch.term,
    epochNode: s.epoch.node,
    leaderUrl: leaderUrl === undefined ? listen : leaderUrl,
    listen,
  };
}

/** Runs --on-demote when `primary` is fenced. */
export function onDemote(primary: Primary, cmd: string | undefined, cluster: string | null): void {
  if (!cmd) return;
  primary.on('fenced', (by, reason) => runHook(cmd, hookEvent(primary, 'demote', reason, cluster, by.url)));
}
