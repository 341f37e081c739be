/**
 * Time spent making writes durable, in this process (fsync of files and folders, syncfs of a
 * whole file system): read by /metrics. Process-wide, as the disk is.
 */
export const fsTiming = { fsyncs: 0, fsyncSeconds: 0, syncfs: 0, syncfsSeconds: 0 };

/** Runs `fn` (an fsync or a syncfs) and adds its duration to `fsTiming`. */
export async function timedSync<T>(kind: 'fsync' | 'syncfs', fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await fn();
  } finally {
    const seconds = (performance.now() - started) / 1000;
    if (kind === 'fsync') {
      fsTiming.fsyncs++;
      fsTiming.fsyncSeconds += seconds;
    } else {
      fsTiming.syncfs++;
      fsTiming.syncfsSeconds += seconds;
    }
  }
}
