import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe } from 'vitest';
import { track } from './helpers/children.mjs';
import { runMimic, test } from './helpers/cluster.js';
import { checkDatabase, DATABASES } from './helpers/sqlite-app.mjs';

/*
 * Live SQLite databases through a crash: an application commits small transactions to a WAL
 * database and a rollback-journal database in the primary's folder; the application and the
 * primary are killed with SIGKILL at the same instant; the mirror is promoted. Each database
 * on it must open, pass integrity_check, and be the state after one committed transaction,
 * never a mix (and never ahead of what the application committed). More cycles, and the
 * transactions lost per cycle, are in `npm run bench:chaos -- --sqlite`.
 */

const APP = join(import.meta.dirname, 'helpers', 'sqlite-app.mjs');

/** Starts the application in `dir`; `committed` holds the last transaction of each database. */
function startApp(dir: string) {
  const child = track(spawn(process.execPath, [APP, dir, '2'], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const committed = new Map<string, number>();
  let rest = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const [name, n] = line.split(' ');
      committed.set(name!, Number(n));
    }
  });
  return { child, committed };
}

describe('SQLite databases through a crash of the primary', () => {
  test('the promoted mirror holds each database at a committed state', { timeout: 60_000 }, async ({
    cluster: c,
    expect,
  }) => {
    for (let cycle = 0; cycle < 2; cycle++) {
      const primaryDir = await c.tempDir('primary');
      const mirrorDir = await c.tempDir('mirror');
      const primary = await c.primary(primaryDir);
      const mirror = await c.mirror(mirrorDir, primary.url, { args: ['--listen', '127.0.0.1:0'] });
      const app = startApp(primaryDir);
      await new Promise((r) => setTimeout(r, 1200 + cycle * 700));
      // The host dies: the application and the primary at once.
      app.child.kill('SIGKILL');
      await primary.kill9();
      // Every commit it reported: what was still in the pipe when it died is read to the end.
      if (app.child.stdout!.readable) await new Promise((r) => app.child.stdout!.once('close', r));
      const promoted = await runMimic(['promote', '--state', mirror.stateDir]);
      expect(promoted.code, promoted.stderr).toBe(0);
      for (const { name } of DATABASES) {
        const committed = app.committed.get(name) ?? 0;
        expect(committed, `${name}: the application committed`).toBeGreaterThan(10);
        const found = checkDatabase(join(mirrorDir, name));
        expect(found, `${name} on the promoted mirror (cycle ${cycle})`).toMatchObject({ ok: true });
        // At most the one transaction the kill caught between its commit and its report.
        expect(found.n).toBeLessThanOrEqual(committed + 1);
        expect(found.n).toBeGreaterThan(0);
      }
      await mirror.stop();
    }
  });
});
