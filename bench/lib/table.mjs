// Formatting numbers and printing aligned tables of mimic against a baseline.

export function fmtMs(ms) {
  if (ms === Number.POSITIVE_INFINITY) return 'never';
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

/** Decimal units, as rsync and the design notes use them. */
export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

export const fmtKiB = (kib) => (kib === null || kib === undefined ? '—' : `${(kib / 1024).toFixed(1)} MiB`);

/** mimic / baseline, or null when either is missing; Infinity when mimic's never happened. */
export function ratio(mimic, baseline) {
  if (typeof mimic !== 'number' || !Number.isFinite(baseline) || baseline <= 0 || Number.isNaN(mimic))
    return null;
  return mimic / baseline;
}

export const fmtRatio = (r) => (r === null ? '—' : r === Number.POSITIVE_INFINITY ? '∞' : r.toFixed(2));

/** "ok" when the ratio meets an upper-bound target, "MISS" when not, "—" when unknown. */
export function verdict(r, target) {
  if (r === null || target === null || target === undefined) return '—';
  return r <= target ? 'ok' : 'MISS';
}

/**
 * Print rows (arrays of cells) under headers, columns padded to the widest cell; columns whose
 * cells look numeric are right-aligned.
 */
export function printTable(headers, rows, out = console.log) {
  const cells = [headers, ...rows].map((r) =>
    r.map((c) => (c === null || c === undefined ? '—' : String(c))),
  );
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => /^[-\d.—≤ ]/.test(String(r[i] ?? '—'))),
  );
  const line = (r) =>
    r
      .map((c, i) => (numeric[i] ? (c ?? '').padStart(widths[i]) : (c ?? '').padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  out(line(cells[0]));
  out(
    widths
      .map((w) => '-'.repeat(w))
      .join('  ')
      .trimEnd(),
  );
  for (const r of cells.slice(1)) out(line(r));
}

/**
 * One comparison row: label cells, then mimic, baseline, ratio, target and verdict.
 * `fmt` formats the two measured values.
 */
export function comparisonRow(labels, mimic, baseline, target, fmt) {
  const r = ratio(mimic, baseline);
  return [
    ...labels,
    typeof mimic === 'number' ? fmt(mimic) : (mimic ?? '—'),
    typeof baseline === 'number' ? fmt(baseline) : (baseline ?? '—'),
    fmtRatio(r),
    target === null || target === undefined ? '—' : `≤ ${target.toFixed(1)}`,
    verdict(r, target),
  ];
}
