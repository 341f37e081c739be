// The table of `bench:writes`: per workload and variant, mimic beside rsync to a local folder
// and into the daemon, medians and ratios (mimic / rsync, lower is better).
import { fmtBytes, fmtMs, fmtRatio, printTable, ratio } from '../lib.mjs';
import { summary } from '../replication/common.mjs';

const HEADERS = ['workload', 'variant', 'metric', 'mimic', 'rsync local', 'ratio', 'rsync daemon', 'ratio'];

const cell = (v, fmt) => (typeof v === 'number' ? fmt(v) : (v ?? '—'));

/** One row: mimic's median of `key` against both rsync sides'. */
function row(res, metric, key, fmt) {
  const m = summary(res.mimic, key);
  const l = summary(res.local, key);
  const d = summary(res.daemon, key);
  return [
    res.workload,
    res.variant,
    metric,
    cell(m, fmt),
    cell(l, fmt),
    fmtRatio(ratio(m, l)),
    cell(d, fmt),
    fmtRatio(ratio(m, d)),
  ];
}

const DEFAULT_ROWS = [
  ['time to mirrored', 'times'],
  ['bytes sent', 'bytes'],
];
const fmtOf = (key) => (key === 'bytes' ? fmtBytes : key === 'ops' ? String : fmtMs);

/**
 * Prints the table. Each result: { workload, variant, mimic, local, daemon, rows, extra }: `rows`
 * lists [metric, key] to compare (medians of side[key]; default: times and bytes), `extra`
 * [metric, key, kind] rows of mimic's alone: the median, or with kind 'count' how many of the
 * samples are 1.
 */
export function printResults(results, out = console.log) {
  const rows = [];
  for (const res of results) {
    for (const [metric, key] of res.rows ?? DEFAULT_ROWS) rows.push(row(res, metric, key, fmtOf(key)));
    for (const [metric, key, kind] of res.extra ?? []) {
      const xs = res.mimic[key] ?? [];
      const v =
        kind === 'count' && xs.length > 0
          ? `${xs.reduce((a, b) => a + b, 0)} of ${xs.length}`
          : cell(summary(res.mimic, key), fmtOf(key));
      rows.push([res.workload, res.variant, metric, v]);
    }
  }
  printTable(HEADERS, rows, out);
}

/** The failures of all sides, one line each. */
export const failures = (results) =>
  results.flatMap((res) =>
    [res.mimic, res.local, res.daemon]
      .filter((s) => s.error)
      .map((s) => `${res.workload} ${res.variant}, ${s.name}: ${s.error}`),
  );
