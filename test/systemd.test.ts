import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { describe, expect } from 'vitest';
import { sleep, test, waitFor } from './helpers/cluster.js';
import { startAgent, tomlString, writeConfig } from './helpers/config-agents.js';
import { NotifySocket } from './helpers/notify-socket.js';

/*
 * A node under systemd's notify protocol, with the service manager's socket played by a
 * datagram socket of the test's own: READY=1 once the node serves, WATCHDOG=1 while its event
 * loop runs (and none while it is stopped), RELOADING=1 around a SIGHUP, STOPPING=1 on SIGTERM.
 */

const WAIT_MS = 20_000;
/** 400 ms: a ping every 200 ms. */
const WATCHDOG_USEC = '400000';

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe.concurrent('systemd notify', () => {
  test('a primary: READY=1 once it listens, watchdog pings while it runs and none while stopped, STOPPING=1', async ({
    cluster: c,
    onTestFinished,
  }) => {
    const socket = await NotifySocket.bind(await c.tempDir('notify'));
    onTestFinished(() => socket.close());
    const root = await c.tempDir('primary');
    const primary = await startAgent(c, 'primary', root, [root, '--listen', '127.0.0.1:0', '--init'], {
      env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC },
      wait: 'spawned',
    });
    const ready = await socket.waitFor('READY', WAIT_MS);
    // The port was 0: the one READY names is known only once the node listens.
    const url = /^primary, serving on (ws:\/\/127\.0\.0\.1:(\d+)), 0 mirrors connected$/.exec(
      ready.fields.STATUS ?? '',
    );
    expect(url, JSON.stringify(ready.fields)).not.toBeNull();
    expect(await accepts(Number(url![2]))).toBe(true);
    expect(primary.events('ready')).toHaveLength(1);
    expect(socket.with('READY')).toHaveLength(1);

    await socket.waitFor('WATCHDOG', WAIT_MS, socket.with('WATCHDOG').length + 3);
    primary.pause();
    await waitFor(async () => (await primary.procState()) === 'T', WAIT_MS, 'the primary to be stopped');
    await sleep(300); // a ping sent just before the stop may still be on its way
    const before = socket.with('WATCHDOG').length;
    await sleep(1200);
    expect(socket.with('WATCHDOG').length, 'pings while stopped').toBe(before);
    primary.resume();
    await socket.waitFor('WATCHDOG', WAIT_MS, before + 2);

    const info = await primary.stop();
    expect(info.code).toBe(0);
    await socket.waitFor('STOPPING', WAIT_MS);
    expect(socket.with('STOPPING')).toHaveLength(1);
  });

  test('a mirror: READY=1 with what it follows; a reload is RELOADING=1 then READY=1', async ({
    cluster: c,
    onTestFinished,
  }) => {
    const socket = await NotifySocket.bind(await c.tempDir('notify'));
    onTestFinished(() => socket.close());
    const primary = await c.primary(await c.tempDir('primary'));
    const [mDir, cfgDir] = [await c.tempDir('mirror'), await c.tempDir('cfg')];
    const lines = [`dir = ${tomlString(mDir)}`, `primary = ${tomlString(primary.url)}`];
    const cfg = await writeConfig(cfgDir, 'mirror.toml', lines);
    const mirror = await startAgent(c, 'mirror', mDir, ['--config', cfg], {
      env: { NOTIFY_SOCKET: socket.path },
    });
    const ready = await socket.waitFor('READY', WAIT_MS);
    expect(ready.fields.STATUS).toMatch(/^mirror of /);
    await waitFor(
      () => socket.received.at(-1)?.fields.STATUS === `mirror of ${primary.url}`,
      WAIT_MS,
      'STATUS naming the primary followed',
    );

    await writeFile(cfg, `${[...lines, 'log-level = "warn"'].join('\n')}\n`);
    mirror.signal('SIGHUP');
    const reloading = await socket.waitFor('RELOADING', WAIT_MS);
    expect(reloading.fields.MONOTONIC_USEC).toMatch(/^\d+$/);
    const again = await socket.waitFor('READY', WAIT_MS, 2);
    expect(again.at).toBeGreaterThanOrEqual(reloading.at);
    expect(await mirror.waitForEvent('reloaded', WAIT_MS)).toMatchObject({ applied: ['log-level'] });
    // No watchdog was asked for.
    expect(socket.with('WATCHDOG')).toEqual([]);
  });

  test('WATCHDOG_PID of another process: no pings', async ({ cluster: c, onTestFinished }) => {
    const socket = await NotifySocket.bind(await c.tempDir('notify'));
    onTestFinished(() => socket.close());
    const root = await c.tempDir('primary');
    await startAgent(c, 'primary', root, [root, '--listen', '127.0.0.1:0', '--init'], {
      env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC, WATCHDOG_PID: '1' },
    });
    await socket.waitFor('READY', WAIT_MS);
    await sleep(1000);
    expect(socket.with('WATCHDOG')).toEqual([]);
  });
});
