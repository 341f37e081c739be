export { type ClusterOptions, ClusterSession } from './cluster/cluster-session.js';
export {
  type ClusterStatus,
  clusterLeadership,
  clusterStatus,
  joinCluster,
  servePrimary,
  switchover,
} from './cluster/clustered.js';
export { type HttpEndpoint, type HttpOptions, serveHttp } from './http/http-server.js';
export { NodeMetrics } from './http/metrics.js';
export type { PeerView, ReadyRules, StatusView } from './http/status-view.js';
export { isLoopbackHost, readTokenFile, TokenError } from './link/auth.js';
export { loadClientTls, loadServerTls, TlsError } from './link/tls-options.js';
export { Mirror } from './mirror/mirror.js';
export type {
  MirrorEvents,
  MirrorOptions,
  MirrorStatus,
  ResolvedMirrorOptions,
} from './mirror/mirror-types.js';
export type { ProgressView } from './mirror/sync-progress.js';
export { ConfinementError } from './node/confine.js';
export { callControl, controlSocketPath } from './node/control-socket.js';
export { NodeCounters } from './node/counters.js';
export { AGENT_ERROR_CODES, AgentError, type AgentErrorCode } from './node/errors.js';
export { jsonLogger, type Logger, silentLogger } from './node/log.js';
export {
  isLogLevel,
  LOG_LEVELS,
  type LogLevel,
  levelOf,
  logLevel,
  setLogLevel,
} from './node/log-level.js';
export { type ListenAddress, parseListen, parsePeerUrl } from './node/options.js';
export { Primary } from './primary/primary.js';
export type {
  MirrorStatus as MirrorLinkStatus,
  PrimaryEvents,
  PrimaryOptions,
  PrimaryStatus,
  ResolvedPrimaryOptions,
} from './primary/primary-types.js';
