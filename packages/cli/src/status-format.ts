import type { ProgressView } from '@mimic/agent';

/** The human summary `mimic status` prints. */
export function printStatus(s: Record<string, unknown>): string {
  const epoch = s.epoch as { term: number; node: string };
  const lines = [
    `role:      ${s.role}`,
    `root:      ${s.root}`,
    `folder:    ${s.folderId ?? "(none yet: adopts its first primary's)"}`,
    `epoch:     ${epoch.term} (${epoch.node})`,
  ];
  if (s.role === 'fenced') {
    const by = s.fencedBy as { url: string | null; epoch: { term: number } } | undefined;
    lines.push(
      `fenced:    ${s.cluster ? 'no longer the leader' : 'a newer primary exists'}${by ? ` (epoch ${by.epoch.term}${by.url ? ` at ${by.url}` : ''})` : ''}; sending nothing`,
    );
  }
  if (s.role === 'primary' || s.role === 'fenced') {
    lines.push(`listening: ${s.listen}`, `journal:   seq ${s.seq}, ${s.files} paths`);
    const bw = s.bandwidth as { perMirror: number | null; total: number | null } | undefined;
    if (bw) lines.push(`bandwidth: ${rate(bw.perMirror)} per mirror, ${rate(bw.total)} in total`);
    const mirrors = s.mirrors as {
      id: string;
      connected: boolean;
      ackedSeq: number;
      bytesSent: number;
      lagBytes?: number;
      lagSeconds?: number;
      codec?: string | null;
    }[];
    if (mirrors.length === 0) lines.push('mirrors:   none yet');
    for (const m of mirrors) {
      const lag = (s.seq as number) - m.ackedSeq;
      lines.push(
        `mirror ${m.id}: ${m.connected ? 'connected' : 'disconnected'}, acked seq ${m.ackedSeq}` +
          `${lag > 0 ? ` (${behind(lag, m.lagBytes, m.lagSeconds)})` : ' (in sync)'}, ${m.bytesSent} bytes sent` +
          `${m.codec ? `, compressed (${m.codec})` : ''}`,
      );
    }
  } else {
    lines.push(
      `following: ${s.following ?? '(none)'} ${s.connected ? '(connected)' : '(not connected)'}`,
      `applied:   seq ${s.appliedSeq}, ${s.bytesReceived} bytes received` +
        `${typeof s.lagOps === 'number' && s.lagOps > 0 ? ` (${behind(s.lagOps, undefined, s.lagSeconds as number)})` : ''}`,
      `diverged:  ${s.diverged} files kept under diverged/`,
    );
    if (s.progress) lines.push(`progress:  ${progressLine(s.progress as ProgressView)}`);
    const bw = s.bandwidth as { receive: number | null } | undefined;
    if (bw)
      lines.push(
        `link:      ${s.codec ? `compressed (${s.codec})` : 'not compressed'}, ${bw.receive === null ? 'no read limit' : `reading ${rate(bw.receive)}`}`,
      );
    const refused = s.refused as { code: string; message: string; hint: string; since: string } | null;
    if (refused && !s.connected) {
      lines.push(`REFUSED:   [${refused.code}] ${refused.message} (since ${refused.since})`);
      if (refused.hint) lines.push(`to fix:    ${refused.hint}`);
    } else if (s.lastError && !s.connected) lines.push(`last error: ${s.lastError}`);
    const notKept = (s.notKept as string[] | undefined) ?? [];
    if (notKept.length > 0)
      lines.push(`not kept:  ${notKept.join(', ')} (not allowed here: run the mirror as root to keep them)`);
  }
  if (s.cluster) lines.push(...clusterLines(s.cluster as ClusterSummary));
  return `${lines.join('\n')}\n`;
}

/** How far behind: ops, and the bytes and seconds when known. */
function behind(ops: number, bytes: number | undefined, seconds: number | undefined): string {
  const parts = [`${ops} behind`];
  if (bytes) parts.push(size(bytes));
  if (seconds !== undefined) parts.push(`oldest ${seconds.toFixed(1)} s`);
  return parts.join(', ');
}

/** As rsync's --info=progress2: done of total, percent, rate, time left. */
export function progressLine(p: ProgressView): string {
  const pct = p.bytesTotal > 0 ? p.bytes / p.bytesTotal : p.filesTotal > 0 ? p.files / p.filesTotal : 0;
  const eta = p.etaSeconds === null ? '?' : clock(p.etaSeconds);
  const bytes = p.bytesTotal > 0 ? `${size(p.bytes)} of ${size(p.bytesTotal)}` : size(p.bytes);
  return `${p.phase}: ${p.files}/${p.filesTotal} files, ${bytes} (${Math.floor(pct * 100)}%), ${size(p.rateBytesPerSec)}/s, ${eta} left`;
}

function size(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x: number) => String(x).padStart(2, '0');
  return `${h}:${pad(m)}:${pad(s % 60)}`;
}

/** A limit in bytes per second as the flags give it, in KiB/s. */
function rate(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null) return 'no limit';
  const kib = bytesPerSecond / 1024;
  return `at most ${Number.isInteger(kib) ? kib : kib.toFixed(1)} KiB/s`;
}

interface ClusterSummary {
  cluster: string;
  etcdReachable: boolean;
  leader: { node: string; term: number; url: string } | null;
  term: number;
  members: { id: string; role: string; seq: number; lag: number | null; nofailover: boolean }[];
}

/** The cluster as this node last read it from etcd. */
function clusterLines(c: ClusterSummary): string[] {
  const leader = c.leader ? `${c.leader.node} at term ${c.leader.term} (${c.leader.url})` : 'none';
  const out = [
    `cluster:   ${c.cluster}, etcd ${c.etcdReachable ? 'reachable' : 'UNREACHABLE'}, term counter ${c.term}`,
    `leader:    ${leader}`,
  ];
  for (const m of c.members)
    out.push(
      `member ${m.id}: ${m.role}, seq ${m.seq}${m.lag === null ? '' : `, ${m.lag} behind`}${m.nofailover ? ', nofailover' : ''}`,
    );
  return out;
}
