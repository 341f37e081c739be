export { AgentError, type AgentErrorCode } from './agent-errors.js';
export { isLoopbackHost, readTokenFile, TokenError } from './auth.js';
export { ConfinementError } from './confine.js';
export { callControl, controlSocketPath } from './control-socket.js';
export { jsonLogger, type Logger, silentLogger } from './log.js';
export {
  Mirror,
  type MirrorEvents,
  type MirrorOptions,
  type MirrorStatus,
  type ResolvedMirrorOptions,
} from './mirror.js';
export { type ListenAddress, parseListen, parsePeerUrl } from './options.js';
export {
  type MirrorStatus as MirrorLinkStatus,
  Primary,
  type PrimaryEvents,
  type PrimaryOptions,
  type PrimaryStatus,
  type ResolvedPrimaryOptions,
} from './primary.js';
export { loadClientTls, loadServerTls, TlsError } from './tls-options.js';
