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
    const mirrors = s.mirrors as { id: string; connected: boolean; ackedSeq: number; bytesSent: number }[];
    if (mirrors.length === 0) lines.push('mirrors:   none yet');
    for (const m of mirrors) {
      const lag = (s.seq as number) - m.ackedSeq;
      lines.push(
        `mirror ${m.id}: ${m.connected ? 'connected' : 'disconnected'}, acked seq ${m.ackedSeq}` +
          `${lag > 0 ? ` (${lag} behind)` : ' (in sync)'}, ${m.bytesSent} bytes sent`,
      );
    }
  } else {
    lines.push(
      `following: ${s.following ?? '(none)'} ${s.connected ? '(connected)' : '(not connected)'}`,
      `applied:   seq ${s.appliedSeq}, ${s.bytesReceived} bytes received`,
      `diverged:  ${s.diverged} files kept under diverged/`,
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
