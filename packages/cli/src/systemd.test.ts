import { describe, expect, it } from 'vitest';
import { SystemdNotifier, watchdogIntervalMs } from './systemd.js';

describe('watchdogIntervalMs', () => {
  it('is half of WATCHDOG_USEC, for this process only', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' })).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '400000', WATCHDOG_PID: String(process.pid) })).toBe(200);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '400000', WATCHDOG_PID: '1' })).toBeNull();
    expect(watchdogIntervalMs({})).toBeNull();
    for (const bad of ['0', '-5', 'soon', '1.5e400'])
      expect(watchdogIntervalMs({ WATCHDOG_USEC: bad })).toBeNull();
  });
});

describe('SystemdNotifier.fromEnv', () => {
  it('is nothing without NOTIFY_SOCKET, and takes the variables out of the environment', () => {
    const env: NodeJS.ProcessEnv = { WATCHDOG_USEC: '400000', PATH: '/bin' };
    expect(SystemdNotifier.fromEnv(() => {}, env)).toBeNull();
    expect(env).toEqual({ PATH: '/bin' });
  });

  it('says once that it cannot reach the socket, however often it sends', () => {
    const lines: string[] = [];
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/nonexistent/notify.sock' };
    const n = SystemdNotifier.fromEnv((event) => lines.push(event), env)!;
    expect(env).toEqual({});
    n.ready('primary, serving');
    n.status('mirror of ws://127.0.0.1:1');
    n.stopping();
    n.close();
    expect(lines).toEqual(['systemd-notify-failed']);
  });
});
