/**
 * Stable error codes of @mimic/agent:
 * - `ERR_NO_ROOT`: the replicated folder does not exist or is not a folder.
 * - `ERR_PORT_IN_USE`: the listen address is taken.
 * - `ERR_LISTEN`: the listen address cannot be used.
 * - `ERR_INOTIFY_LIMIT`: the kernel's inotify watch limit is reached.
 * - `ERR_TIMEOUT`: `flush` did not complete in time.
 * - `ERR_CLOSED`: the agent was closed.
 * - `ERR_FENCED`: this primary learned of a newer epoch and no longer serves.
 * - `ERR_NOT_MIRROR`: promotion asked of a node that is not a mirror.
 * - `ERR_NO_LISTEN`: promotion asked of a mirror started without a listen address.
 * - `ERR_INSECURE`: a non-loopback listener without a token (and without `insecure`).
 */
export type AgentErrorCode =
  | 'ERR_NO_ROOT'
  | 'ERR_PORT_IN_USE'
  | 'ERR_LISTEN'
  | 'ERR_INOTIFY_LIMIT'
  | 'ERR_TIMEOUT'
  | 'ERR_CLOSED'
  | 'ERR_FENCED'
  | 'ERR_NOT_MIRROR'
  | 'ERR_NO_LISTEN'
  | 'ERR_INSECURE';

export class AgentError extends Error {
  readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string) {
    super(message);
    this.name = 'AgentError';
    this.code = code;
  }
}
