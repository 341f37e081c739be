// The end of a run with a big work folder: its failures listed, the folder removed (noted for
// the next run's settle) or kept, and the total time.
import { now, removeWork } from './run.mjs';
import { fmtMs } from './table.mjs';

export function endRun({ errors, work, keep, started, waitedMs }) {
  if (errors.length > 0) {
    console.log('\nfailures:');
    for (const e of errors) console.log(`  ${e.split('\n').join('\n    ')}`);
  }
  if (keep) console.log(`\nkept ${work}`);
  else {
    const tRemove = now();
    removeWork(work, { manyFiles: true });
    console.log(`\nremoved ${work} in ${fmtMs(now() - tRemove)}`);
  }
  console.log(
    `total ${fmtMs(now() - started)}` +
      (waitedMs > 1000 ? ` (of which ${fmtMs(waitedMs)} waiting out an earlier clean-up)` : ''),
  );
}
