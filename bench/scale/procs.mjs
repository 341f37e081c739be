// What /proc says about the two agents (resident memory, CPU time), and their log lines.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { cpuMs, now, sleep } from '../lib.mjs';

/** VmRSS (resident now) and VmHWM (peak resident) of a live process, in KiB. */
export function memKiB(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** CPU (user + system, ms) of each agent of a MimicPair, as { primary, mirror }. */
export const pairCpu = (pair) => ({ primary: cpuMs(pair.primary.pid), mirror: cpuMs(pair.mirror.pid) });

/** Memory of each agent of a MimicPair, as { primary: { rss, hwm }, mirror: { rss, hwm } }. */
export const pairMem = (pair) => ({ primary: memKiB(pair.primary.pid), mirror: memKiB(pair.mirror.pid) });

/**
 * Resolves with both agents' CPU once neither has used any for `quietMs` (at most `timeoutMs`): what
 * a phase cost them, with the work it left behind (the primary signs what it sent once the
 * transfer is over).
 */
export async function pairCpuWhenQuiet(pair, { quietMs = 500, timeoutMs = 30_000 } = {}) {
  const end = now() + timeoutMs;
  let last = pairCpu(pair);
  for (;;) {
    await sleep(quietMs);
    const cur = pairCpu(pair);
    if ((cur.primary === last.primary && cur.mirror === last.mirror) || now() > end) return cur;
    last = cur;
  }
}

/**
 * Samples both agents every `everyMs` for `ms`: CPU used over the span, the most used in any one
 * interval (a periodic rescan shows as a burst), RSS at the end and the highest RSS seen.
 */
export async function watchIdle(pair, ms, everyMs = 1000) {
  const roles = ['primary', 'mirror'];
  const start = pairCpu(pair);
  const out = Object.fromEntries(roles.map((r) => [r, { cpu: 0, burst: 0, rssMax: 0, rss: null }]));
  let prev = start;
  const end = now() + ms;
  while (now() < end) {
    await sleep(Math.min(everyMs, end - now()));
    pair.assertRunning();
    const cur = pairCpu(pair);
    const mem = pairMem(pair);
    for (const r of roles) {
      out[r].burst = Math.max(out[r].burst, cur[r] - prev[r]);
      out[r].rssMax = Math.max(out[r].rssMax, mem[r].rss);
      out[r].rss = mem[r].rss;
      out[r].cpu = cur[r] - start[r];
    }
    prev = cur;
  }
  return out;
}

/**
 * Reads the JSON log lines a process appends to `file` from byte `offset` on (the log of an
 * earlier start of the same agent is before it). `poll()` returns the lines added since the last
 * call, parsed; lines that are not JSON are skipped.
 */
export function logReader(file, offset = 0) {
  let pos = offset;
  let rest = '';
  const buf = Buffer.allocUnsafe(1 << 20);
  return {
    poll() {
      const lines = [];
      let fd;
      try {
        fd = openSync(file, 'r');
      } catch {
        return lines;
      }
      try {
        for (;;) {
          const n = readSync(fd, buf, 0, buf.length, pos);
          if (n <= 0) break;
          pos += n;
          rest += buf.toString('utf8', 0, n);
        }
      } finally {
        closeSync(fd);
      }
      const parts = rest.split('\n');
      rest = parts.pop();
      for (const p of parts) {
        try {
          lines.push(JSON.parse(p));
        } catch {}
      }
      return lines;
    },
  };
}

/** The size of a file, 0 when it does not exist yet (where a log reader starts). */
export const sizeOf = (file) => statSync(file, { throwIfNoEntry: false })?.size ?? 0;
