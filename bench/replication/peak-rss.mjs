// RSS: peak resident memory (VmHWM) of the primary and of the mirror while a 2 GiB file of random
// bytes replicates into an empty mirror. Both are read from /proc once the mirror holds the file
// exactly, before the processes stop. There is no baseline; the time is for information.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fmtKiB, MiB, now, settle, waitForMirror, writeRandomFile } from '../lib.mjs';
import { guarded, newSide } from './common.mjs';
import { MimicPair } from './sides.mjs';

export async function runPeakRss(ctx) {
  const dir = join(ctx.work, 'rss');
  const size = ctx.quick ? 256 * MiB : 2048 * MiB;
  const src = join(dir, 'src');
  mkdirSync(src, { recursive: true });
  console.log(`  RSS: ${size / MiB} MiB file into an empty mirror`);
  writeRandomFile(join(src, 'big.bin'), size, 5);
  const pair = new MimicPair({
    name: 'rss',
    src,
    dst: join(dir, 'dst'),
    primaryState: join(dir, 'state'),
    logDir: ctx.logDir,
  });
  const side = newSide('mimic');
  let peak = null;
  let ms = null;
  await guarded(side, 'mimic', async () => {
    await settle();
    const t0 = now();
    try {
      await pair.start();
      const res = await waitForMirror(src, pair.dst, [{ rel: 'big.bin', check: 'content' }], {
        t0,
        timeoutMs: 1_800_000,
        intervalMs: 20,
        check: () => pair.assertRunning(),
      });
      peak = pair.peakRssKiB();
      ms = res.ms;
      console.log(
        `    mirrored in ${(ms / 1000).toFixed(1)} s; peak RSS primary ${fmtKiB(peak.primary)}, mirror ${fmtKiB(peak.mirror)}`,
      );
    } finally {
      await pair.stop();
    }
  });
  const label = `${size / MiB} MiB file`;
  const cell = (v) => (side.error ? 'error' : fmtKiB(v));
  return {
    rows: [
      {
        w: 'RSS',
        metric: `primary peak RSS, ${label}`,
        mimic: cell(peak?.primary),
        baseline: '—',
        base: '—',
      },
      { w: 'RSS', metric: `mirror peak RSS, ${label}`, mimic: cell(peak?.mirror), baseline: '—', base: '—' },
      {
        w: 'RSS',
        metric: `time to mirrored, ${label}`,
        mimic: side.error ? 'error' : `${(ms / 1000).toFixed(1)} s`,
        baseline: '—',
        base: '—',
      },
    ],
    errors: side.error ? [`RSS mimic: ${side.error}`] : [],
  };
}
