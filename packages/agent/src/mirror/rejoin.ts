/*
 * Changing roles. A mirror promoted serves with its own options (promotedOptions). An old
 * primary rejoining as a mirror: the new primary's welcome names where it forked from
 * the old epoch. Files this node changed as a primary after that point are kept aside
 * (preserved in diverged/) rather than overwritten by the new primary's copies.
 */
import { stat } from 'node:fs/promises';
import { compareEpoch, type Epoch } from '@mimic/wire';
import type { Leadership } from '../node/leadership.js';
import type { ListenAddress } from '../node/options.js';
import type { Primary } from '../primary/primary.js';
import type { FollowState } from './follow-state.js';
import type { ResolvedMirrorOptions } from './mirror-types.js';

/**
 * A primary's change tracker journals a write a little after it happens (watcher latency, a
 * batch): files changed this long before its last journal write may be missing from it.
 */
const UNJOURNALED_SLACK_MS = 2000;

/**
 * Paths this node journaled after `fork.seq` when `fork.epoch` was its own epoch as primary;
 * the applier keeps them.
 */
export async function divergedSince(
  s: FollowState,
  fork: { epoch: Epoch; seq: number } | undefined,
): Promise<Set<string>> {
  const keep = new Set<string>();
  if (!fork || compareEpoch(fork.epoch, s.epoch) !== 0) return keep;
  await unjournaledEdits(s, keep);
  if (s.store.firstSeq() > fork.seq + 1) {
    // Rows after the fork were dropped (a journal bound): which paths changed since is not
    // known, so every file this node holds that differs from the new primary's is kept.
    for (const [path, rec] of s.applier.manifest) if (rec.kind !== 'dir') keep.add(path);
  }
  for (let from = fork.seq + 1; ; ) {
    const rows = s.store.readJournal(from, 1000);
    if (rows.length === 0) break;
    for (const { op } of rows) {
      if (op.kind === 'rename') keep.add(op.to);
      // Metadata alone counts: an owner, mode, ACL or xattr changed there is kept as well.
      else if (op.kind === 'write' || op.kind === 'symlink' || op.kind === 'meta' || op.kind === 'link')
        keep.add(op.path);
    }
    from = rows[rows.length - 1]!.seq + 1;
  }
  s.applier.keep = keep;
  if (keep.size > 0) s.log('rejoin', { forkSeq: fork.seq, divergedPaths: keep.size });
  return keep;
}

/**
 * Files this node changed as a primary just before it stopped, after its last journal write:
 * their stat can still match the manifest (a same-size rewrite in the same clock tick), so
 * any file changed since shortly before that write is hashed and kept if it differs.
 */
async function unjournaledEdits(s: FollowState, keep: Set<string>): Promise<void> {
  if (s.storeWrittenAt === null) return;
  const since = s.storeWrittenAt - UNJOURNALED_SLACK_MS;
  const a = s.applier;
  for (const [path, rec] of a.manifest) {
    if (rec.kind !== 'file' || !rec.hash || keep.has(path)) continue;
    const e = await a.statLocal(path).catch(() => null);
    if (e?.kind !== 'file' || e.ctimeMs < since || !a.isOurs(path, e)) continue;
    if ((await a.hashLocal(path)) !== rec.hash) keep.add(path);
  }
}

/** The latest mtime of a SQLite database and its write-ahead log, or null if neither exists. */
export async function lastWriteOf(db: string): Promise<number | null> {
  const times = await Promise.all(
    [db, `${db}-wal`].map((f) =>
      stat(f).then(
        (st) => st.mtimeMs,
        () => null,
      ),
    ),
  );
  const known = times.filter((t): t is number => t !== null);
  return known.length > 0 ? Math.max(...known) : null;
}

/** What a promoted mirror serves with: its own folder, state, peers, security and keep flags. */
export function promotedOptions(
  o: ResolvedMirrorOptions,
  listen: ListenAddress,
  lead: Leadership | undefined,
): ConstructorParameters<typeof Primary>[0] {
  return {
    root: o.root,
    listen,
    stateDir: o.stateDir,
    peers: o.primaries,
    log: o.log,
    counters: o.counters,
    keep: o.keep,
    insecure: o.insecure,
    // The link's limits stay with the node: what it read per link it now sends per mirror.
    compress: o.compress,
    ...(o.bwlimit ? { bwlimit: o.bwlimit } : {}),
    ...(o.bwlimitTotal ? { bwlimitTotal: o.bwlimitTotal } : {}),
    ...(lead ? { leadership: async () => lead } : {}),
    ...(o.token ? { token: o.token } : {}),
    ...(o.tls ? { tls: o.tls } : {}),
    ...(o.tlsCa ? { tlsCa: o.tlsCa } : {}),
  };
}
