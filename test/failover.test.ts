import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  FailoverCluster,
  freePorts,
  type MirrorStatus,
  PROMOTE_BIN,
  type PrimaryStatus,
  runMimic,
  runScript,
  sleep,
  urlOf,
  waitFor,
} from './helpers/failover-cluster.js';
import { filesUnder, treeOf } from './helpers/tree-snapshot.js';

/*
 * The failover drill with real processes: P primary (peers A, B), A and B mirrors that list
 * every node and can serve. P dies with SIGKILL, A is promoted, B follows A, P comes back as a
 * primary and is fenced, then rejoins as a mirror of A keeping what only it had under
 * diverged/.
 */

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

describe('failover', () => {
  let c: FailoverCluster;
  beforeEach(() => {
    c = new FailoverCluster();
  });
  afterEach(async () => {
    await c.cleanup();
  });

  test('promote with no agent behind the state folder fails with one line', async () => {
    const dir = await c.tempDir('no-agent');
    for (const r of [
      await runMimic(['promote', '--state', dir]),
      await runScript(PROMOTE_BIN, ['--state', dir]),
    ]) {
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/\[ERR_NO_AGENT\]\n$/);
    }
  });

  test('kill -9 the primary, promote a mirror, fence the old primary, rejoin it as a mirror', {
    timeout: 90_000,
  }, async () => {
    const base = await c.tempDir('drill');
    const [P, A, B, C] = ['P', 'A', 'B', 'C'].map((n) => join(base, n)) as [string, string, string, string];
    for (const d of [P, A, B, C]) await mkdir(d);
    const [pPort, aPort, bPort] = (await freePorts(3)) as [number, number, number];
    const [pUrl, aUrl, bUrl] = [urlOf(pPort), urlOf(aPort), urlOf(bPort)];
    const everyNode = [pUrl, aUrl, bUrl];
    const hookEnv = join(base, 'hook.env');

    await writeFile(join(P, 'one.txt'), 'one\n');
    await writeFile(join(P, 'big.bin'), randomBytes(200_000));
    await mkdir(join(P, 'sub'));
    await writeFile(join(P, 'sub/two.txt'), 'two\n');

    // --- all three up, in step --------------------------------------------------------------
    let p = await c.primary('P', P, { port: pPort, peers: [aUrl, bUrl] });
    const a = await c.mirror('A', A, {
      primaries: everyNode,
      port: aPort,
      onPromote: `env > '${hookEnv}'`,
    });
    const b = await c.mirror('B', B, { primaries: everyNode, port: bPort });
    await c.converged(P, A);
    await c.converged(P, B);
    const before = await waitFor(
      async () => {
        const s = await p.status<PrimaryStatus>();
        return s.mirrors.filter((m) => m.connected && m.ackedSeq === s.seq).length === 2 && s;
      },
      20_000,
      'P to see both mirrors in step',
      () => c.report(),
    );
    expect(before).toMatchObject({ role: 'primary', epoch: { term: 1 }, listen: pUrl });
    const pId = before.nodeId;
    const aId = (await a.status<MirrorStatus>()).nodeId;
    const bId = (await b.status<MirrorStatus>()).nodeId;

    // --- P dies; two changes reach its disk and nowhere else ---------------------------------
    await p.kill9();
    await writeFile(join(P, 'ponly.txt'), 'P-only change\n');
    await appendFile(join(P, 'one.txt'), 'P edit\n');

    // --- A is promoted --------------------------------------------------------------------------
    const promoted = await runMimic(['promote', '--state', a.stateDir]);
    expect(promoted.stderr).toBe('');
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toMatch(
      new RegExp(`^promoted: epoch 2 \\(${escapeRe(aId)}\\), serving on ${escapeRe(aUrl)}\\n$`),
    );
    expect(await a.status()).toMatchObject({ role: 'primary', epoch: { term: 2, node: aId }, listen: aUrl });

    // A second promotion (through the promote-mirror command) is refused: A is no mirror now.
    const again = await runScript(PROMOTE_BIN, ['--state', a.stateDir]);
    expect(again.code).not.toBe(0);
    expect(again.stdout).toBe('');
    expect(lines(again.stderr)).toHaveLength(1);
    expect(again.stderr).toMatch(/\[ERR_NOT_MIRROR\]\n$/);
    expect(await a.status()).toMatchObject({ role: 'primary', epoch: { term: 2 } });

    // The --on-promote hook ran with the new epoch and address in its environment.
    const env = await waitFor(
      async () => {
        const text = await readFile(hookEnv, 'utf8').catch(() => '');
        return text.includes('MIMIC_LISTEN=') && text;
      },
      10_000,
      'the on-promote hook to write its environment',
      () => c.report(),
    );
    const hook = Object.fromEntries(
      lines(env).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(hook.MIMIC_EPOCH).toBe('2');
    expect(hook.MIMIC_LISTEN).toBe(aUrl);

    // --- writes on A reach B, which now follows A -----------------------------------------------
    await writeFile(join(A, 'three.txt'), 'three\n');
    await writeFile(join(A, 'sub/two.txt'), 'two, edited on A\n');
    const bNow = await waitFor(
      async () => {
        const s = await b.status<MirrorStatus>();
        return s.following === aUrl && s.connected && s.epoch.term === 2 && s;
      },
      30_000,
      'B to follow A',
      () => c.report(),
    );
    expect(bNow.epoch).toEqual({ term: 2, node: aId });
    const aTree = await c.converged(A, B);
    expect(aTree.has('three.txt')).toBe(true);
    expect(aTree.has('ponly.txt')).toBe(false);
    expect(await readFile(join(A, 'one.txt'), 'utf8')).toBe('one\n');

    // --- P restarted as a primary finds the newer epoch and is fenced -----------------------
    p = await c.primary('P (restarted as primary)', P, { port: pPort, peers: [aUrl, bUrl] });
    const fenced = await p.status<PrimaryStatus>();
    expect(fenced).toMatchObject({
      role: 'fenced',
      fencedBy: { url: aUrl, epoch: { term: 2, node: aId } },
      epoch: { term: 1, node: pId },
      listen: pUrl,
    });
    expect(fenced.mirrors.filter((m) => m.connected)).toEqual([]);

    // Written into P while fenced: P journals it but sends it to no one.
    await writeFile(join(P, 'fenced.txt'), 'written while fenced\n');
    await waitFor(
      async () => (await p.status<PrimaryStatus>()).seq > fenced.seq,
      10_000,
      'P to journal fenced.txt',
      () => c.report(),
    );
    // A new mirror that knows only P gets nothing from it.
    const cm = await c.mirror('C (follows only P)', C, { primaries: [pUrl], wait: 'spawned' });
    const cStatus = await waitFor(
      async () => {
        const s = await cm.status<MirrorStatus>();
        return s.lastError !== null && s;
      },
      15_000,
      'C to be turned away by P',
      () => c.report(),
    );
    expect(cStatus).toMatchObject({ connected: false, appliedSeq: 0 });
    expect(cStatus.lastError).toMatch(/fenced/i);
    // Long enough for A's and B's periodic probes of every node (every 3 s) to have seen P.
    await sleep(3500);
    expect([...(await treeOf(C)).keys()]).toEqual([]);
    for (const dir of [A, B]) {
      const tree = await treeOf(dir);
      expect(tree.has('fenced.txt')).toBe(false);
      expect(tree.has('ponly.txt')).toBe(false);
    }
    const stillFenced = await p.status<PrimaryStatus>();
    expect(stillFenced.role).toBe('fenced');
    expect(stillFenced.mirrors.filter((m) => m.connected || m.bytesSent > 0)).toEqual([]);
    expect(await a.status()).toMatchObject({ role: 'primary', epoch: { term: 2 } });
    expect(await b.status()).toMatchObject({ role: 'mirror', following: aUrl, connected: true });
    await c.converged(A, B);

    // --- P rejoins as a mirror of A ---------------------------------------------------------
    await cm.stop();
    await p.stop();
    expect((await p.exited).code).toBe(0);
    const pm = await c.mirror('P (rejoined as mirror)', P, { primaries: [aUrl, bUrl] });
    const final = await c.converged(A, P, 30_000);
    expect(final.has('ponly.txt')).toBe(false);
    expect(final.has('fenced.txt')).toBe(false);
    expect(await readFile(join(P, 'one.txt'), 'utf8')).toBe('one\n');
    expect(await readFile(join(P, 'three.txt'), 'utf8')).toBe('three\n');

    // Everything only P had is kept under <state>/diverged/<term>/<path>, with P's content.
    const diverged = await filesUnder(join(P, '.mimic', 'diverged'));
    const keptAs = (path: string) =>
      [...diverged].filter(([rel]) => new RegExp(`^\\d+/${escapeRe(path)}(\\.\\d+)?$`).test(rel));
    const content = (path: string) => keptAs(path).map(([, data]) => data.toString('utf8'));
    expect(content('ponly.txt')).toEqual(['P-only change\n']);
    expect(content('one.txt')).toEqual(['one\nP edit\n']);
    expect(content('fenced.txt')).toEqual(['written while fenced\n']);

    const rejoined = await pm.status<MirrorStatus>();
    expect(rejoined).toMatchObject({
      role: 'mirror',
      nodeId: pId,
      following: aUrl,
      connected: true,
      epoch: { term: 2, node: aId },
    });
    expect(rejoined.diverged).toBeGreaterThanOrEqual(1);
    const aFinal = await a.status<PrimaryStatus>();
    expect(
      aFinal.mirrors
        .filter((m) => m.connected)
        .map((m) => m.id)
        .sort(),
    ).toEqual([bId, pId].sort());
    await c.converged(A, B);
  });

  test('an old primary rejoining keeps an edit its journal missed, even one its stat hides', {
    timeout: 60_000,
  }, async () => {
    const base = await c.tempDir('unjournaled');
    const [P, A] = ['P', 'A'].map((n) => join(base, n)) as [string, string];
    for (const d of [P, A]) await mkdir(d);
    const [pPort, aPort] = (await freePorts(2)) as [number, number];
    const [pUrl, aUrl] = [urlOf(pPort), urlOf(aPort)];
    const original = randomBytes(50_000);
    await writeFile(join(P, 'data.bin'), original);

    const p = await c.primary('P', P, { port: pPort, peers: [aUrl] });
    const a = await c.mirror('A', A, { primaries: [pUrl, aUrl], port: aPort });
    await c.converged(P, A);
    await waitFor(
      async () => {
        const s = await p.status<PrimaryStatus>();
        return s.mirrors.some((m) => m.connected && m.ackedSeq === s.seq);
      },
      20_000,
      'A to acknowledge everything',
      () => c.report(),
    );

    // P dies; its file is then rewritten with the same size and its old mtime put back (a
    // rewrite in the same clock tick looks just like this): size, mtime and inode all match
    // what P's manifest says, and no journal row records the change.
    await p.kill9();
    const before = await stat(join(P, 'data.bin'));
    const edited = randomBytes(50_000);
    await writeFile(join(P, 'data.bin'), edited);
    await utimes(join(P, 'data.bin'), before.atime, before.mtime);

    const promoted = await runMimic(['promote', '--state', a.stateDir]);
    expect(promoted.code).toBe(0);
    await c.mirror('P (rejoined as mirror)', P, { primaries: [aUrl] });
    await c.converged(A, P, 30_000);
    expect(await readFile(join(P, 'data.bin'))).toEqual(original);
    const diverged = await filesUnder(join(P, '.mimic', 'diverged'));
    const kept = [...diverged].filter(([rel]) => /^\d+\/data\.bin(\.\d+)?$/.test(rel));
    expect(kept.map(([, data]) => data.equals(edited))).toEqual([true]);
  });
});
