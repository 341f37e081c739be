import type { Store } from '../node/store.js';
/** Journal rows kept whatever the mirrors have acknowledged, for a quick catch-up of a new one. */
export const JOURNAL_KEEP_MIN_ROWS = 10_000;
/** Default bound on the journal: a mirror further behind catches up by manifest instead. */
export const JOURNAL_KEEP_DEFAULT_ROWS = 1_000_000;

/**
 * The lowest sequence number the journal must keep: everything a known mirror has not yet
 * acknowledged, and the newest `min(JOURNAL_KEEP_MIN_ROWS, keep)` rows, but never more than
 * the newest `keep` rows. Rows below it can go.
 */
export function journalKeepFrom(lastSeq: number, ackedSeqs: readonly number[], keep: number): number {
  const needed = ackedSeqs.length > 0 ? Math.min(...ackedSeqs) + 1 : lastSeq + 1;
  const recent = lastSeq + 1 - Math.min(JOURNAL_KEEP_MIN_ROWS, keep);
  return Math.max(1, Math.min(needed, recent), lastSeq + 1 - keep);
}

/** Cached signatures nothing refers to are looked for this seldom (it reads the whole journal). */
const PRUNE_SIGNATURES_EVERY_MS = 10 * 60_000;

/** Drops journal rows no mirror needs (journalKeepFrom), then, now and then, unused signatures. */
export class JournalPruner {
  #sigsPrunedAt = 0;

  prune(
    store: Pick<Store, 'firstSeq' | 'pruneJournal' | 'pruneSignatures'>,
    lastSeq: number,
    ackedSeqs: readonly number[],
    keep: number,
  ): void {
    const from = journalKeepFrom(lastSeq, ackedSeqs, keep);
    if (from <= store.firstSeq()) return;
    store.pruneJournal(from);
    if (Date.now() - this.#sigsPrunedAt >= PRUNE_SIGNATURES_EVERY_MS) {
      this.#sigsPrunedAt = Date.now();
      store.pruneSignatures();
    }
  }
}
