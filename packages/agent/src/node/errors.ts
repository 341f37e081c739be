/**
 * Every stable error code @mimic/agent produces, in one table. An error the agent raises is an
 * {@link AgentError} (or one of its subclasses, which carry extra fields); its `code` is one of
 * these and its message names the thing concerned and what is wrong with it.
 */
export const AGENT_ERROR_CODES = {
  // Starting a node.
  ERR_NO_ROOT: 'the replicated folder does not exist or is not a folder',
  ERR_PORT_IN_USE: 'the listen address is taken',
  ERR_LISTEN: 'the listen address cannot be used',
  ERR_INSECURE: 'a non-loopback listener without a token (and without `insecure`)',
  ERR_TOKEN: 'a token file is missing, unreadable, too short or readable by others',
  ERR_TLS: 'a TLS file is missing, unreadable, not PEM, expired, or a key that does not fit',
  ERR_FOLDER_MARKER:
    "the root's folder marker is missing, damaged or disagrees with the node's state (a failed mount, a recreated folder)",
  ERR_INOTIFY_LIMIT: "the kernel's inotify watch limit is reached (the node rescans instead)",
  // Talking to a peer.
  ERR_PROTOCOL:
    'a peer sent a message out of turn (a second hello, an op before hello, a compressed message with a codec not agreed)',
  ERR_HANDSHAKE_TIMEOUT: 'a peer sent no hello and proof in time',
  ERR_AUTH: 'a peer did not prove it holds the shared token',
  ERR_ROLE: 'a peer has another role than this node expects (a mirror dialling a mirror)',
  ERR_EPOCH: "a peer's epoch is older than this node's",
  ERR_STALE_PRIMARY: 'a primary that has been superseded by a promotion',
  ERR_FOLDER_ID: 'a peer serves or holds another folder than this node',
  ERR_FENCED: 'this primary learned of a newer epoch and no longer serves',
  // Applying ops on a mirror.
  ERR_UNSAFE_PATH: 'a path would leave the root or pass through a symlink or a non-folder',
  ERR_BASIS_MISMATCH: "a delta's basis is not the mirror's copy of the file (the mirror reconciles)",
  ERR_APPLY: 'an op could not be applied',
  ERR_LAND: 'files rebuilt and verified could not be made durable or put in place',
  ERR_FSYNC: 'syncfs reported an I/O error: what was written may not be durable',
  // The control socket and the library API.
  ERR_BAD_REQUEST: 'a control request is malformed or names an unknown command',
  ERR_CONTROL: 'the agent answered a control request with a failure, or unreadably',
  ERR_NO_AGENT: 'no agent is running for this state folder',
  ERR_TIMEOUT: '`flush` (or a control request) did not complete in time',
  ERR_CLOSED: 'the agent was closed',
  ERR_NOT_MIRROR: 'promotion asked of a node that is not a mirror',
  ERR_NO_LISTEN: 'promotion asked of a mirror started without a listen address',
  // Automatic failover on etcd.
  ERR_INVALID_ARGUMENT: 'an option (--cluster, --etcd-ttl, --bwlimit, ...) is malformed',
  ERR_ETCD: 'etcd did not answer, or this node holds no lease there',
  ERR_NOT_LEADER: 'another node holds (or just took) the leader key of the cluster',
  ERR_CLUSTER_VALUE: 'a key under /mimic/<cluster>/ in etcd does not hold what it should',
  ERR_INTERNAL: 'a bug: the agent reached a state it should not',
} as const;

export type AgentErrorCode = keyof typeof AGENT_ERROR_CODES;

export class AgentError extends Error {
  readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentError';
    this.code = code;
  }
}

/** The code of any error: an agent's, a wire or delta error's, or Node's (`ENOENT`). */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * An error from a durable step, naming the path and the step (`landing a.txt: renaming into
 * place: ENOSPC: no space left on device`); it keeps the cause's code where it has none of its own.
 */
export function stepError(code: AgentErrorCode, path: string, step: string, cause: unknown): AgentError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new AgentError(code, `${path}: ${step}: ${why}`, { cause });
}
