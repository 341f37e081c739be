/*
 * What mimic keeps in etcd, under `/mimic/<cluster>/`:
 *   leader         the primary: { node, term, url }, bound to that node's lease (gone with it)
 *   term           the last term handed out, a decimal counter (no lease: it only grows)
 *   members/<id>   each node: its role, position, URL, priority and `nofailover`, bound to its lease
 *   switchover     an operator's request to hand the primary role to { to: <node id> }
 * Values are JSON; one read from etcd that does not parse as what it should be is refused with
 * a message naming the key, never guessed at.
 */
import { AgentError } from '../node/errors.js';

export interface ClusterKeys {
  readonly prefix: string;
  readonly leader: string;
  readonly term: string;
  readonly members: string;
  readonly switchover: string;
  member(id: string): string;
}

const CLUSTER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function clusterKeys(cluster: string): ClusterKeys {
  if (!CLUSTER_NAME.test(cluster))
    throw new AgentError(
      'ERR_INVALID_ARGUMENT',
      `--cluster ${JSON.stringify(cluster)}: expected 1 to 64 of [A-Za-z0-9._-]`,
    );
  const prefix = `/mimic/${cluster}/`;
  return {
    prefix,
    leader: `${prefix}leader`,
    term: `${prefix}term`,
    members: `${prefix}members/`,
    switchover: `${prefix}switchover`,
    member: (id) => `${prefix}members/${id}`,
  };
}

export interface LeaderValue {
  node: string;
  term: number;
  url: string;
}

export interface MemberValue {
  id: string;
  role: 'primary' | 'mirror' | 'fenced';
  /** A mirror: the last sequence it applied; a primary: the last it journaled. */
  seq: number;
  /** The primary it follows (a mirror), by epoch term; the term it serves in (a primary). */
  term: number;
  url: string | null;
  priority: number;
  nofailover: boolean;
}

function parse(key: string, raw: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new AgentError('ERR_CLUSTER_VALUE', `etcd key ${key}: not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new AgentError('ERR_CLUSTER_VALUE', `etcd key ${key}: expected an object`);
  return v as Record<string, unknown>;
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function parseLeader(key: string, raw: string): LeaderValue {
  const v = parse(key, raw);
  if (typeof v.node !== 'string' || !isUint(v.term) || typeof v.url !== 'string')
    throw new AgentError('ERR_CLUSTER_VALUE', `etcd key ${key}: expected { node, term, url }`);
  return { node: v.node, term: v.term, url: v.url };
}

export function parseMember(key: string, raw: string): MemberValue {
  const v = parse(key, raw);
  const role = v.role;
  if (
    typeof v.id !== 'string' ||
    (role !== 'primary' && role !== 'mirror' && role !== 'fenced') ||
    !isUint(v.seq) ||
    !isUint(v.term) ||
    (v.url !== null && typeof v.url !== 'string') ||
    typeof v.priority !== 'number' ||
    typeof v.nofailover !== 'boolean'
  )
    throw new AgentError(
      'ERR_CLUSTER_VALUE',
      `etcd key ${key}: expected a member { id, role, seq, term, url, priority, nofailover }`,
    );
  return {
    id: v.id,
    role,
    seq: v.seq,
    term: v.term,
    url: v.url as string | null,
    priority: v.priority,
    nofailover: v.nofailover,
  };
}

export function parseSwitchover(key: string, raw: string): { to: string } {
  const v = parse(key, raw);
  if (typeof v.to !== 'string' || v.to === '')
    throw new AgentError('ERR_CLUSTER_VALUE', `etcd key ${key}: expected { to: <node id> }`);
  return { to: v.to };
}

export function parseTerm(key: string, raw: string | null): number {
  if (raw === null) return 0;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n))
    throw new AgentError(
      'ERR_CLUSTER_VALUE',
      `etcd key ${key}: expected a term number, got ${JSON.stringify(raw.slice(0, 40))}`,
    );
  return n;
}

/**
 * Who takes over when the leader is gone: among members that may (not `nofailover`, not
 * fenced, within `maxLag` ops of the last position the primary published), the most caught-up
 * one, then the highest priority, then the lowest node id. Null when none may.
 */
export function chooseSuccessor(
  members: readonly MemberValue[],
  lastPrimarySeq: number,
  maxLag: number,
): MemberValue | null {
  const eligible = members.filter(
    (m) => m.role === 'mirror' && !m.nofailover && m.url !== null && lastPrimarySeq - m.seq <= maxLag,
  );
  eligible.sort(
    (a, b) => b.seq - a.seq || b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  return eligible[0] ?? null;
}
