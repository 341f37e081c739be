/*
 * primary/: the writer's side of mimic.
 *
 *   primary.ts            Primary: owns the store, the tracker, the watcher, the WebSocket server
 *                         and one session per connected mirror; fencing by newer epochs; pruning
 *   primary-types.ts      what Primary's callers pass (options, resolved and frozen) and see
 *   ws-server.ts          the WebSocket server (on https with TLS)
 *   tree-watcher*.ts      the filesystem watcher, in a thread of its own; watch-tree.ts wires it
 *   change-tracker.ts     resolves marked paths against the manifest and journals the changes
 *   tracker-*.ts          its parts
 *   journal-retention.ts  how far back the journal is kept for mirrors that are behind
 *   recent-content.ts     content just read by the tracker, held for the sessions to send
 *   session.ts            MirrorSession: one mirror's handshake, resume or reconcile, acks
 *   session-sender.ts     the op for each journal row or need, against what the mirror holds
 *   op-batcher.ts         small ops gathered into bounded `ops` messages
 *   signing-scheduler.ts  signatures of what went whole, made when a session is quiet
 *   write-parts.ts        a file's write op in parts: whole, or a delta
 *   sqlite-snapshot.ts    SQLite databases read as one committed image, sent in their place
 *
 * How a change flows: the watcher marks a path → the tracker lstats and hashes it, resolves it
 * against the manifest and appends a journal row (manifest and journal in one transaction) →
 * 'appended' pokes every session → each session reads the journal from its cursor, turns rows
 * into ops (the file's content as it is now, a delta where the mirror's version is signed) and
 * sends them within its socket's window → the mirror applies them and acks a sequence, which
 * the store records for journal pruning and `flush()` waits on.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { compareEpoch, type Epoch, type HelloMessage, makeHello } from '@mimic/wire';
import type { WebSocketServer as WebSocketServerClass } from 'ws';
import { RefusalLimiter } from '../link/auth.js';
import { probePeer } from '../link/peer-probe.js';
import { serveControl } from '../node/control-socket.js';
import { AgentError } from '../node/errors.js';
import { type Excluder, makeExcluder } from '../node/excludes.js';
import { resolveFolderId } from '../node/folder-marker.js';
import type { Leadership, LeadershipSource } from '../node/leadership.js';
import { holdMemoryTrim } from '../node/memory-trim.js';
import type { ListenAddress } from '../node/options.js';
import { relativeInside } from '../node/paths.js';
import { SeqClock } from '../node/seq-clock.js';
import { Store } from '../node/store.js';
import { NO_EPOCH } from '../node/store-schema.js';
import { XattrReader } from '../node/xattr-reader.js';
import { ChangeTracker } from './change-tracker.js';
import { JournalPruner } from './journal-retention.js';
import { type KnownMirror, mirrorList, rememberMirror, waitUntil } from './mirror-acks.js';
import {
  type FenceReason,
  type PrimaryEvents,
  type PrimaryOptions,
  type PrimaryStatus,
  type ResolvedPrimaryOptions,
  resolveOptions,
} from './primary-types.js';
import { Rescanner } from './rescanner.js';
import { rewatch } from './rewatch.js';
import { MirrorSession, type SessionContext } from './session.js';
import { DatabaseImages } from './sqlite-snapshot.js';
import type { TreeWatcher } from './tree-watcher.js';
import { watchTree } from './watch-tree.js';
import { listenWs } from './ws-server.js';

const PEER_PROBE_MS = 3000;
/** How often acknowledged journal rows are dropped (and signatures nothing refers to any more). */
const PRUNE_EVERY_MS = 30_000;

/** The writer's side: watches its folder, journals every change, and streams it to mirrors. */
export class Primary extends EventEmitter<PrimaryEvents> {
  readonly options: ResolvedPrimaryOptions;
  #store!: Store;
  #tracker!: ChangeTracker;
  #nodeId = '';
  #folderId = '';
  #epoch: Epoch = NO_EPOCH;
  #wss: WebSocketServerClass | null = null;
  #watcher: TreeWatcher | null = null;
  #skip: Excluder = () => false;
  #control: Server | null = null;
  #rescan: Rescanner | null = null;
  #sessions = new Set<MirrorSession>();
  #known = new Map<string, KnownMirror>();
  /** When each journal row was written, while a mirror may still lack it (lag in seconds and bytes). */
  #clock = new SeqClock();
  #address: ListenAddress | null = null;
  #fencedBy: { url: string | null; epoch: Epoch } | null = null;
  #leadership: Leadership | null = null;
  #holding = false;
  /** More to show in status (the cluster, when there is one). */
  statusExtra: (() => Record<string, unknown>) | null = null;
  #peerTimer: NodeJS.Timeout | null = null;
  #pruneTimer: NodeJS.Timeout | null = null;
  readonly #releaseTrim = holdMemoryTrim();
  readonly #pruner = new JournalPruner();
  #https: HttpsServer | null = null;
  #refusals = new RefusalLimiter({ log: (event, fields) => this.options.log(event, fields) });

  constructor(options: PrimaryOptions) {
    super();
    this.options = resolveOptions(options);
  }

  get address(): ListenAddress {
    if (!this.#address) throw new AgentError('ERR_CLOSED', 'primary is not listening');
    return this.#address;
  }

  get epoch(): Epoch {
    return this.#epoch;
  }

  async start(): Promise<void> {
    const { root, stateDir, log } = this.options;
    const st = await stat(root).catch(() => null);
    if (!st?.isDirectory()) throw new AgentError('ERR_NO_ROOT', `${root}: no such folder`);
    const dbPath = join(stateDir, 'mimic.db');
    // No state yet: a root without its marker is refused before anything is made in it.
    if (!existsSync(dbPath))
      resolveFolderId({ root, stateId: null, init: this.options.init, role: 'primary' });
    await mkdir(stateDir, { recursive: true });
    this.#store = new Store(dbPath);
    this.#folderId = resolveFolderId({
      root,
      stateId: this.#store.folderId(),
      init: this.options.init,
      role: 'primary',
    })!;
    this.#store.setFolderId(this.#folderId);
    this.#nodeId = this.#store.nodeId();
    this.#epoch = this.#store.serveEpoch();
    this.#fencedBy = this.#store.fencedBy();
    if (!this.#fencedBy) this.#store.setRole('primary');
    for (const [id, seq] of this.#store.peerAcks())
      this.#known.set(id, { id, ackedSeq: seq, bytesSent: 0, opsSent: 0 });
    const stateRel = relativeInside(root, stateDir);
    this.#skip = makeExcluder(this.options.exclude, stateRel);
    const skip = (rel: string, dir: boolean) => this.#skip(rel, dir);
    const xattrs = new XattrReader(this.options.keep, log);
    const images = new DatabaseImages(join(stateDir, 'images'));
    this.#tracker = new ChangeTracker(root, this.#store, skip, () => this.#epoch, { xattrs, images });
    // Without a cluster a fenced primary still journals: its rejoin keeps what it wrote.
    this.#tracker.gate = () => !this.#holding && (!this.#leadership || this.#mayWrite());
    this.#clock = new SeqClock(this.#tracker.lastSeq);
    this.#tracker.on('appended', (seq, bytes) => {
      this.#clock.note(seq, bytes);
      for (const s of this.#sessions) s.poke();
      this.emit('appended', seq);
    });
    this.#tracker.on('error', (err) => {
      log('error', { error: err.message });
      this.#report(err);
    });
    if (this.options.leadership) await this.#lead(this.options.leadership);
    // Before serving anyone: is there a newer primary out there already?
    await this.#probePeers();
    await this.#listen();
    const watcher = watchTree(this.options, stateRel, this.#tracker, (err) => this.#report(err));
    this.#watcher = watcher;
    // A fanotify mark covers the tree from its first moment: one scan, after it, is enough.
    if (watcher.kind !== 'fanotify') await this.#tracker.scan();
    await watcher.ready;
    await this.#tracker.scan(watcher.readyAt);
    await this.#tracker.settled();
    log('ready', { root, seq: this.#tracker.lastSeq, files: this.#tracker.manifest.size });
    const every = this.options.rescanIntervalMs;
    if (every > 0) this.#rescan = new Rescanner(this.#tracker, this.options.counters, every);
    this.#pruneTimer = setInterval(() => this.pruneJournal(), PRUNE_EVERY_MS);
    this.#pruneTimer.unref();
    this.#control = await serveControl(stateDir, (req) => this.#command(req.cmd));
    if (this.options.peers.length > 0) {
      this.#peerTimer = setInterval(() => void this.#probePeers(), PEER_PROBE_MS);
      this.#peerTimer.unref();
    }
  }

  /** New exclude patterns, at run time (a config reload); see rewatch.ts. */
  setExcludes(globs: readonly string[]): void {
    if (!this.#watcher) throw new AgentError('ERR_CLOSED', 'setExcludes: the primary is not running');
    const report = (err: Error) => this.#report(err);
    [this.#skip, this.#watcher] = rewatch(this.options, globs, this.#watcher, this.#tracker, report);
  }

  get fenced(): boolean {
    return !this.#mayWrite();
  }

  get #listenUrl(): string {
    const { host, port } = this.#address ?? this.options.listen;
    return `${this.options.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /** This primary's hello as it is now, carrying the nonce of the connection it opens. */
  #hello(nonce: Uint8Array): HelloMessage {
    return makeHello({
      nodeId: this.#nodeId,
      role: this.#fencedBy ? 'fenced' : 'primary',
      epoch: this.#epoch,
      appliedSeq: this.#tracker?.lastSeq ?? 0,
      nonce,
      listenUrl: this.#listenUrl,
      folder: this.#folderId,
    });
  }

  async #probePeers(): Promise<void> {
    const { token, tlsCa } = this.options;
    const results = await Promise.all(
      this.options.peers.map((url) =>
        probePeer(url, this.#nodeId, (nonce) => this.#hello(nonce), {
          token,
          ...(tlsCa ? { ca: tlsCa } : {}),
        }),
      ),
    );
    for (const r of results) {
      // A node of another folder says nothing about who writes this one.
      if (r?.hello.folder !== undefined && r.hello.folder !== this.#folderId) continue;
      if (r && (r.hello.role === 'primary' || r.hello.role === 'mirror'))
        this.#learnEpoch(r.hello.epoch, r.hello.listenUrl ?? r.url);
    }
  }

  /** Takes the cluster's leader key (see cluster/); its term is this primary's epoch. */
  async #lead(source: LeadershipSource): Promise<void> {
    this.#leadership = await source(this.#nodeId, this.#epoch, this.#listenUrl);
    this.#epoch = { term: this.#leadership.term, node: this.#nodeId };
    this.#store.setEpoch(this.#epoch);
  }

  /** A switchover: journals nothing more (until released) and sends what was; then `stepDown`. */
  holdChanges = (hold = true): void => void (this.#holding = hold);
  stepDown = (): void =>
    void (this.#fencedBy || this.#fence({ url: null, epoch: this.#epoch }, 'switchover'));

  /** New bandwidth limits in wire bytes per second (null: none; absent: as they are), at once. */
  setBandwidth = (limits: { perMirror?: number | null; total?: number | null }): void =>
    this.options.links.set(limits);

  /** Not fenced, and (with a cluster) still within the lease: checked before each send and journal write. */
  #mayWrite(): boolean {
    if (this.#fencedBy) return false;
    if (!this.#leadership || this.#leadership.valid()) return true;
    this.#fence({ url: null, epoch: this.#epoch }, 'lease-lost');
    return false;
  }

  /** A peer told us its epoch. A higher one means another node was promoted: stop serving. */
  #learnEpoch(epoch: Epoch, url: string | null): void {
    if (compareEpoch(epoch, this.#epoch) > 0 && !this.#fencedBy) this.#fence({ url, epoch }, 'newer-epoch');
  }

  #fence(by: { url: string | null; epoch: Epoch }, reason: FenceReason): void {
    this.#fencedBy = by;
    this.#store.fence(by);
    this.options.log('fenced', { reason, epoch: this.#epoch, newerEpoch: by.epoch, newerPrimary: by.url });
    for (const s of this.#sessions) s.socket.close(4001, `ERR_FENCED: ${reason} (epoch ${by.epoch.term})`);
    this.emit('fenced', by, reason);
  }

  #command(cmd: string): unknown {
    if (cmd === 'status') return this.status();
    throw new AgentError('ERR_BAD_REQUEST', `unknown command ${cmd}`);
  }

  async #listen(): Promise<void> {
    const { wss, https, address } = await listenWs(this.options.listen, this.options.tls);
    this.#https = https;
    this.#address = address;
    this.#wss = wss;
    this.options.log('listening', { url: this.#listenUrl, auth: this.options.token ? 'token' : 'none' });
    this.emit('listening', this.#address);
    wss.on('connection', (ws, req) => {
      const session = new MirrorSession(
        ws,
        this.#sessionContext(),
        req.socket.remoteAddress ?? 'unknown',
        req.socket,
      );
      this.#sessions.add(session);
    });
  }

  /** What a mirror's session is given of this primary. */
  #sessionContext(): SessionContext {
    return {
      nodeId: this.#nodeId,
      folderId: this.#folderId,
      root: this.options.root,
      store: this.#store,
      tracker: this.#tracker,
      epoch: () => this.#epoch,
      hello: (nonce) => this.#hello(nonce),
      fork: () => this.#store.fork(),
      fenced: () => !this.#mayWrite(),
      learnEpoch: (epoch, url) => this.#learnEpoch(epoch, url),
      log: this.options.log,
      token: this.options.token,
      refused: (who, reason) => this.#refusals.refused(who, { reason }),
      onAck: (s) => {
        this.#store.setPeerAck(s.id, s.ackedSeq);
        this.emit('ack', s.id, s.ackedSeq);
      },
      onClose: (s) => {
        this.#sessions.delete(s);
        rememberMirror(this.#known, s);
      },
      wan: this.options,
    };
  }

  /**
   * Hands a problem that does not stop the primary to its 'error' listeners, if it has any (it
   * is logged either way): an unheard 'error' event would end the process.
   */
  #report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  status(): PrimaryStatus {
    return {
      role: this.#mayWrite() ? 'primary' : 'fenced',
      ...(this.#fencedBy ? { fencedBy: this.#fencedBy } : {}),
      ...(this.statusExtra ? this.statusExtra() : {}),
      nodeId: this.#nodeId,
      epoch: this.#epoch,
      folderId: this.#folderId,
      root: this.options.root,
      listen: this.#listenUrl,
      watcher: this.#watcher?.kind ?? null,
      seq: this.#tracker.lastSeq,
      files: this.#tracker.manifest.size,
      journalRows: Math.max(0, this.#tracker.lastSeq - this.#store.firstSeq() + 1),
      bandwidth: this.options.links.view(),
      mirrors: mirrorList(this.#known, this.#sessions, this.#tracker.lastSeq, this.#clock),
    };
  }

  /** Resolves once at least `mirrors` mirrors have durably applied everything journaled before the call. */
  async flush({
    mirrors = 1,
    timeoutMs = 30_000,
  }: {
    mirrors?: number;
    timeoutMs?: number;
  } = {}): Promise<void> {
    if (this.#fencedBy) throw new AgentError('ERR_FENCED', 'flush: this primary is fenced');
    // A write made just before the call may not have reached the watcher yet: look for it,
    // and wait out the second look at vanished paths (renames or deletes).
    await this.#tracker.scan();
    await this.#tracker.settled();
    const target = this.#tracker.lastSeq;
    // Distinct mirrors: a stale second connection of one mirror must not count twice.
    const enough = () =>
      new Set([...this.#sessions].filter((s) => s.ackedSeq >= target && s.id).map((s) => s.id)).size >=
      mirrors;
    const timedOut = () =>
      new AgentError(
        'ERR_TIMEOUT',
        `flush: fewer than ${mirrors} mirrors reached seq ${target} in ${timeoutMs} ms`,
      );
    await waitUntil(this as EventEmitter, 'ack', enough, timeoutMs, timedOut);
  }

  /** Drops journal rows no mirror needs (journalKeepFrom), then unused signatures; every PRUNE_EVERY_MS. */
  pruneJournal(): void {
    const acked = this.status().mirrors.map((m) => m.ackedSeq);
    this.#clock.forget(Math.min(this.#tracker.lastSeq, ...acked));
    this.#pruner.prune(this.#store, this.#tracker.lastSeq, acked, this.options.journalKeep);
  }

  async close(): Promise<void> {
    this.#rescan?.stop();
    for (const t of [this.#pruneTimer, this.#peerTimer]) if (t) clearInterval(t);
    this.#releaseTrim();
    this.#tracker?.close();
    const watcher = this.#watcher;
    this.#watcher = null;
    await watcher?.close();
    for (const s of this.#sessions) s.socket.close(1001, 'primary shutting down');
    await new Promise<void>((resolve) => (this.#wss ? this.#wss.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (this.#https ? this.#https.close(() => resolve()) : resolve()));
    this.#refusals.close();
    this.#control?.close();
    await this.#tracker?.idle();
    this.#store?.close();
  }
}
