/*
 * systemd's notify protocol (sd_notify(3)) for a node run as a `Type=notify` service:
 *
 *   READY=1 + STATUS=   once the node serves (a primary listening and scanned; a mirror started)
 *   STATUS=             when what the node is changes (a promotion, a rejoin, another primary)
 *   RELOADING=1 + MONOTONIC_USEC=   as a SIGHUP reload begins; READY=1 again once it is done
 *   STOPPING=1          on SIGTERM or SIGINT, before the node closes
 *   WATCHDOG=1          every WATCHDOG_USEC/2 while the event loop keeps up: a tick that finds
 *                       the loop was held up for more than half that interval sends nothing,
 *                       so a node wedged (or stopped) long enough is restarted by systemd
 *
 * Without NOTIFY_SOCKET it does nothing at all. The variables are read once and removed from
 * the environment, so that hooks the node runs do not speak for it.
 */
import { type IntervalHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Logger } from '@mimic/agent';
import { notify } from '@mimic/fsmeta';

export class SystemdNotifier {
  readonly #socket: string;
  readonly #log: Logger;
  #status = '';
  #failed = false;
  #watchdog: NodeJS.Timeout | null = null;
  #delays: IntervalHistogram | null = null;

  /** The notifier NOTIFY_SOCKET asks for (its watchdog running when WATCHDOG_USEC is set), or null. */
  static fromEnv(log: Logger, env: NodeJS.ProcessEnv = process.env): SystemdNotifier | null {
    const socket = env.NOTIFY_SOCKET;
    const intervalMs = watchdogIntervalMs(env);
    delete env.NOTIFY_SOCKET;
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
    if (!socket) return null;
    const notifier = new SystemdNotifier(socket, log);
    if (intervalMs !== null) notifier.#startWatchdog(intervalMs);
    return notifier;
  }

  constructor(socket: string, log: Logger) {
    this.#socket = socket;
    this.#log = log;
  }

  ready(status: string): void {
    this.#status = oneLine(status);
    this.#send(`READY=1\nSTATUS=${this.#status}`);
  }

  /** Sends STATUS= when it differs from the last one sent. */
  status(status: string): void {
    const line = oneLine(status);
    if (line === this.#status) return;
    this.#status = line;
    this.#send(`STATUS=${line}`);
  }

  reloading(): void {
    this.#send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  stopping(): void {
    this.#stopWatchdog();
    this.#send('STOPPING=1');
  }

  close(): void {
    this.#stopWatchdog();
  }

  #startWatchdog(intervalMs: number): void {
    const delays = monitorEventLoopDelay({
      resolution: Math.max(1, Math.min(20, Math.floor(intervalMs / 10))),
    });
    delays.enable();
    this.#delays = delays;
    let due = performance.now() + intervalMs;
    this.#watchdog = setInterval(() => {
      const now = performance.now();
      const late = now - due;
      due = now + intervalMs;
      const held = Math.max(late, delays.max / 1e6);
      delays.reset();
      if (held <= intervalMs / 2) this.#send('WATCHDOG=1');
    }, intervalMs);
    this.#watchdog.unref();
  }

  #stopWatchdog(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = null;
    this.#delays?.disable();
    this.#delays = null;
  }

  #send(message: string): void {
    try {
      notify(this.#socket, message);
    } catch (err) {
      // Said once: a socket that went away would otherwise be a line per watchdog tick.
      if (this.#failed) return;
      this.#failed = true;
      this.#log('systemd-notify-failed', { socket: this.#socket, error: (err as Error).message });
    }
  }
}

/** Half of WATCHDOG_USEC in milliseconds, when the watchdog is meant for this process; else null. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isSafeInteger(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');
