export const ETCD_BIN: string;
/** --heartbeat-interval of every member, in ms. */
export const HEARTBEAT_MS: number;
/** --election-timeout of every member, in ms (etcd's shortest lease TTL follows from it). */
export const ELECTION_MS: number;

export interface EtcdOptions {
  /** Created if missing; holds one data dir and one log file per member. */
  baseDir: string;
  /** Number of members (default 1). */
  members?: number;
  /** Prefix of the member names (`<name>-0`, `<name>-1`…) and of the cluster token (default 'mimic-test'). */
  name?: string;
}

export interface EtcdMember {
  readonly name: string;
  /** http://127.0.0.1:<port>, for clients. */
  readonly clientUrl: string;
  /** http://127.0.0.1:<port>, for the other members. */
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logPath: string;
  /** The process id, or null while the member is down. */
  readonly pid: number | null;
  /** Whether the process is up (it may not serve yet, or have no quorum). */
  readonly running: boolean;
  /** SIGKILL; resolves once the process has exited. No-op when down. */
  kill9(): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. No-op when down. */
  stop(): Promise<void>;
  /**
   * Starts a down member again with the same data dir and flags (--initial-cluster-state
   * existing); resolves once it answers /health with true. Rejects, with the log tail, if it is
   * already running, exits first or is not healthy in time.
   */
  start(): Promise<void>;
  /** Name, pid or exit, and the last lines of the log. */
  describe(): string;
}

export interface EtcdCluster {
  /** The client URL of each member, in member order. */
  readonly endpoints: readonly string[];
  readonly members: readonly EtcdMember[];
  /** The member that is the raft leader now (from its /metrics), or null: none up, no quorum, an election. */
  leader(): Promise<EtcdMember | null>;
  /** Stops every member that is up, the leader last (so that it does not wait on a leadership transfer). */
  stop(): Promise<void>;
  /** Every member's describe(), for test failure messages. */
  describe(): string;
}

/**
 * Starts a new cluster on free ports of 127.0.0.1 with test timings; resolves once every
 * member answers /health with true. The processes are tracked (children.mjs): a test worker
 * that dies leaves none running. Throws TypeError on bad options.
 */
export function startEtcd(options: EtcdOptions): Promise<EtcdCluster>;
