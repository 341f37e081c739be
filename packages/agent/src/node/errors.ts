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
 * - `ERR_FOLDER_MARKER`: the root's folder marker is missing, damaged, or disagrees with the
 *   node's state (a failed mount, a recreated folder); the node refuses to start.
 * - `ERR_FOLDER_ID`: a peer serves or holds another folder than this node; it is refused.
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
  | 'ERR_INSECURE'
  | 'ERR_FOLDER_MARKER'
  | 'ERR_FOLDER_ID';

export class AgentError extends Error {
  readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string) {
    super(message);
    this.name = 'AgentError';
    this.code = code;
  }
}
