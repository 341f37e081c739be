// The baseline: `rsync -a` of the source tree, into a local folder and into the rsync daemon on
// loopback, timed from spawn to exit, with the CPU of every rsync process of the run.
import { cpuMs, runChecked, whenSteady } from '../lib.mjs';

/**
 * mimic's folder marker (`.mimic-folder`, written into the source by `mimic primary --init`) is
 * not part of the tree; every rsync run leaves it out, so the copies hold the same files as the
 * mirror and a no-op is a no-op.
 */
const FLAGS = ['-a', '--exclude=/.mimic-folder'];

/**
 * `rsync -a <src>/ <dest>`: { ms, cpu }. `dest` is a local folder or a daemon URL. CPU: the
 * client with the processes it forks (children of this process once it has waited for them) and,
 * given `daemon`, the receiver the daemon forked (counted there once the daemon has reaped it).
 */
export async function rsyncRun(src, dest, { daemon, timeoutMs = 3_600_000 } = {}) {
  const cpu = () =>
    cpuMs('self', { children: true }) + (daemon ? cpuMs(daemon.child.pid, { children: true }) : 0);
  const before = cpu();
  const r = await runChecked(['rsync', ...FLAGS, `${src}/`, dest], { timeoutMs, rss: false });
  const after = daemon ? await whenSteady(cpu) : cpu();
  return { ms: r.ms, cpu: after - before };
}
