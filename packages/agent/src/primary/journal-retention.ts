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
