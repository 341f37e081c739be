import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { Agent, type MirrorStatus, type PrimaryStatus, runMimic, test } from './helpers/cluster.js';
import { ETCD_BIN, startEtcd } from './helpers/etcd.mjs';
import { freePorts } from './helpers/failover-cluster.js';
import { waitFor } from './helpers/polling.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

/*
 * Automatic failover on a real etcd on loopback: a primary and two mirrors in one cluster; the
 * primary is killed with SIGKILL; within about its lease the best-placed mirror takes the
 * leader key and serves, the other follows it, and nothing the old primary had sent is lost.
 * And an etcd restarted under load changes nothing: no failover, no flap.
 */

const TTL = '2';
const haveEtcd = process.env.PATH?.split(':').some((d) => existsSync(join(d, ETCD_BIN))) ?? false;

interface Node {
  agent: Agent;
  dir: string;
  url: string;
}

async function cluster3(
  c: Parameters<Parameters<typeof test>[1]>[0]['cluster'],
  endpoints: string,
  ttl = TTL,
  primaryEndpoints = endpoints,
  bExtra: string[] = [],
) {
  const [pp, pa, pb] = await freePorts(3);
  const urls = [pp, pa, pb].map((p) => `ws://127.0.0.1:${p}`);
  const etcd = ['--etcd', endpoints, '--cluster', 'www', '--etcd-ttl', ttl];
  const pDir = await c.tempDir('primary');
  await writeFile(join(pDir, 'index.html'), '<h1>v1</h1>\n');
  const hooks = await c.tempDir('hooks');
  const hook = (name: string) => `env | grep ^MIMIC_ | sort > ${join(hooks, name)}`;
  const pArgs = [
    '--etcd',
    primaryEndpoints,
    ...etcd.slice(2),
    '--peers',
    urls.slice(1).join(','),
    '--on-demote',
    hook('P-demote'),
  ];
  const P: Node = { dir: pDir, url: urls[0]!, agent: await c.primary(pDir, { port: pp, args: pArgs }) };
  const mirror = async (port: number, url: string, extra: string[]): Promise<Node> => {
    const dir = await c.tempDir('mirror');
    const name = url === urls[1] ? 'A' : 'B';
    const args = [
      '--listen',
      `127.0.0.1:${port}`,
      ...etcd,
      '--on-promote',
      hook(`${name}-promote`),
      ...extra,
    ];
    const agent = await c.mirror(dir, urls, { args });
    restarts.set(name, () => c.mirror(dir, urls, { args, wait: 'spawned' }));
    return { dir, url, agent };
  };
  /** Starts a stopped mirror again on its folder, with its flags (it need not find a primary). */
  const restarts = new Map<string, () => Promise<Agent>>();
  const A = await mirror(pa!, urls[1]!, []);
  const B = await mirror(pb!, urls[2]!, ['--priority', '5', ...bExtra]);
  /** The environment a hook ran with, once it has. */
  const hookEnv = (name: string) =>
    waitFor(() => readFile(join(hooks, name), 'utf8').catch(() => ''), 10_000, `the ${name} hook`);
  return { P, A, B, hookEnv, restart: (name: 'A' | 'B') => restarts.get(name)!() };
}

describe.skipIf(!haveEtcd)('automatic failover on etcd', () => {
  test('kill -9 of the primary: the best mirror takes over, the other follows it, nothing is lost', {
    timeout: 60_000,
  }, async ({ cluster: c, expect }) => {
    const etcd = await startEtcd({ baseDir: await c.tempDir('etcd') });
    try {
      const { P, A, B, hookEnv } = await cluster3(c, etcd.endpoints.join(','));
      for (let i = 0; i < 20; i++) await writeFile(join(P.dir, `f${i}.txt`), `file ${i}\n`);
      await P.agent.status();
      await c.converged(P.dir, A.dir);
      await c.converged(P.dir, B.dir);
      const before = await P.agent.status<PrimaryStatus & { cluster: { leader: { term: number } } }>();
      expect(before.role).toBe('primary');
      const term = before.epoch.term;
      await P.agent.kill9();
      // Equally caught up: B has the higher priority and takes over by itself.
      await B.agent.waitForEvent('promoted', 20_000);
      const b = await B.agent.status<PrimaryStatus>();
      expect(b).toMatchObject({ role: 'primary' });
      expect(b.epoch.term).toBeGreaterThan(term);
      expect(A.agent.events('promoted')).toEqual([]);
      const env = await hookEnv('B-promote');
      expect(env).toContain('MIMIC_ACTION=promote\n');
      expect(env).toContain('MIMIC_REASON=failover\n');
      expect(env).toContain('MIMIC_CLUSTER=www\n');
      expect(env).toContain(`MIMIC_TERM=${b.epoch.term}\n`);
      expect(env).toContain(`MIMIC_NODE_ID=${b.nodeId}\n`);
      // A follows B, and a change on B reaches A.
      await writeFile(join(B.dir, 'after.txt'), 'written on the new primary\n');
      await c.converged(B.dir, A.dir);
      const a = await A.agent.status<MirrorStatus & { cluster: { leader: { node: string } } }>();
      expect(a.epoch).toEqual(b.epoch);
      expect(a.cluster.leader.node).toBe(b.nodeId);
      // The old primary, started again, finds another leader and does not serve.
      const again = await runMimic([
        'primary',
        P.dir,
        '--listen',
        '127.0.0.1:0',
        '--etcd',
        etcd.endpoints[0]!,
        '--cluster',
        'www',
        '--etcd-ttl',
        TTL,
      ]);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/ERR_NOT_LEADER/);
      // With its peers named, it rejoins as a mirror by itself, keeping what only it had.
      await writeFile(join(P.dir, 'only-on-old-P.txt'), 'written after the fork\n');
      const port = new URL(P.url).port;
      const args = ['primary', P.dir, '--listen', `127.0.0.1:${port}`, '--etcd', etcd.endpoints[0]!];
      args.push('--cluster', 'www', '--etcd-ttl', TTL, '--peers', [A.url, B.url].join(','));
      const back = new Agent('primary', P.dir, join(P.dir, '.mimic'), args);
      c.agents.push(back);
      await back.waitForEvent('rejoining', 20_000);
      await back.waitForEvent('connected', 20_000);
      await writeFile(join(B.dir, 'after-rejoin.txt'), 'B leads\n');
      await waitFor(() => existsSync(join(P.dir, 'after-rejoin.txt')), 20_000, 'the old primary to follow B');
      expect(existsSync(join(P.dir, 'only-on-old-P.txt'))).toBe(false);
      const kept = await readdir(join(P.dir, '.mimic', 'diverged'), { recursive: true });
      expect(kept.some((f) => String(f).endsWith('only-on-old-P.txt'))).toBe(true);
    } finally {
      await c.cleanup().catch(() => {});
      await etcd.stop();
    }
  });

  test('etcd restarted under load: no failover, no flap', { timeout: 60_000 }, async ({
    cluster: c,
    expect,
  }) => {
    const etcd = await startEtcd({ baseDir: await c.tempDir('etcd') });
    try {
      // A lease that outlasts an etcd restart (the default is 10 s).
      const { P, A, B } = await cluster3(c, etcd.endpoints.join(','), '6');
      const term = (await P.agent.status<PrimaryStatus>()).epoch.term;
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          await writeFile(join(P.dir, `load${i % 50}.txt`), `round ${i}\n`);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await etcd.members[0]!.kill9();
      await new Promise((r) => setTimeout(r, 500));
      await etcd.members[0]!.start();
      await new Promise((r) => setTimeout(r, 3000));
      writing = false;
      await writer;
      const p = await P.agent.status<PrimaryStatus>();
      expect(p.role).toBe('primary');
      expect(p.epoch.term).toBe(term);
      expect(A.agent.events('promoted')).toEqual([]);
      expect(B.agent.events('promoted')).toEqual([]);
      expect(P.agent.events('fenced')).toEqual([]);
      await c.converged(P.dir, A.dir);
      await c.converged(P.dir, B.dir);
    } finally {
      await c.cleanup().catch(() => {});
      await etcd.stop();
    }
  });

  test('the primary cut off from etcd (not from mirrors) stops before another starts', {
    timeout: 60_000,
  }, async ({ cluster: c, expect }) => {
    const etcd = await startEtcd({ baseDir: await c.tempDir('etcd') });
    const port = Number(new URL(etcd.endpoints[0]!).port);
    const proxy = await TcpProxy.start({ port });
    try {
      const { P, A, B, hookEnv } = await cluster3(
        c,
        etcd.endpoints.join(','),
        TTL,
        `http://127.0.0.1:${proxy.port}`,
      );
      await writeFile(join(P.dir, 'before.txt'), 'sent by the old primary\n');
      await c.converged(P.dir, A.dir);
      proxy.refuseFor(60_000);
      proxy.cutAll();
      const fenced = await P.agent.waitForEvent('fenced', 20_000);
      expect(fenced.reason).toBe('lease-lost');
      // Written after it stopped: never journaled, never on any mirror.
      await writeFile(join(P.dir, 'late.txt'), 'after the lease\n');
      const took = await waitFor(
        () => B.agent.events('leader')[0] ?? A.agent.events('leader')[0],
        20_000,
        'a mirror to take the leader key',
      );
      // Both transitions on one clock: the old primary stopped before the new one began.
      expect(Date.parse(String(fenced.time))).toBeLessThan(Date.parse(String(took.time)));
      const winner = B.agent.events('leader').length > 0 ? B : A;
      await winner.agent.waitForEvent('promoted', 10_000);
      await new Promise((r) => setTimeout(r, 1000));
      for (const m of [A, B]) {
        expect(existsSync(join(m.dir, 'before.txt'))).toBe(true);
        expect(existsSync(join(m.dir, 'late.txt'))).toBe(false);
      }
      // Fenced, it rejoins as a mirror (etcd is still out of its reach: it follows without).
      await P.agent.waitForEvent('rejoining', 10_000);
      const env = await hookEnv('P-demote');
      expect(env).toContain('MIMIC_ACTION=demote\n');
      expect(env).toContain('MIMIC_REASON=lease-lost\n');
      expect(env).toContain('MIMIC_ROLE=fenced\n');
    } finally {
      await c.cleanup().catch(() => {});
      await proxy.close();
      await etcd.stop();
    }
  });

  test('a three-member etcd losing one member changes nothing', { timeout: 60_000 }, async ({
    cluster: c,
    expect,
  }) => {
    const etcd = await startEtcd({ baseDir: await c.tempDir('etcd'), members: 3 });
    try {
      const { P, A, B } = await cluster3(c, etcd.endpoints.join(','), '4');
      const term = (await P.agent.status<PrimaryStatus>()).epoch.term;
      // The raft leader itself: the harder case (an election inside etcd).
      const lost = (await etcd.leader()) ?? etcd.members[0]!;
      await lost.kill9();
      for (let i = 0; i < 10; i++) await writeFile(join(P.dir, `during${i}.txt`), `${i}\n`);
      await new Promise((r) => setTimeout(r, 6000));
      const p = await P.agent.status<PrimaryStatus & { cluster: { etcdReachable: boolean } }>();
      expect(p).toMatchObject({ role: 'primary', epoch: { term } });
      expect(p.cluster.etcdReachable).toBe(true);
      expect([
        ...A.agent.events('promoted'),
        ...B.agent.events('promoted'),
        ...P.agent.events('fenced'),
      ]).toEqual([]);
      await c.converged(P.dir, A.dir);
      await c.converged(P.dir, B.dir);
    } finally {
      await c.cleanup().catch(() => {});
      await etcd.stop();
    }
  });

  test('switchover: the target takes over once it has everything, no write lost', {
    timeout: 60_000,
  }, async ({ cluster: c, expect }) => {
    const etcd = await startEtcd({ baseDir: await c.tempDir('etcd') });
    try {
      const { P, A, B, hookEnv } = await cluster3(c, etcd.endpoints.join(','), '4');
      for (let i = 0; i < 30; i++) await writeFile(join(P.dir, `w${i}.txt`), `write ${i}\n`);
      const aId = (await A.agent.status<MirrorStatus>()).nodeId;
      const r = await runMimic(['switchover', '--to', aId, '--etcd', etcd.endpoints[0]!, '--cluster', 'www']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^switched over: ${aId} leads at term \\d+`));
      const promoted = await A.agent.waitForEvent('promoted', 10_000);
      expect(promoted.reason).toBe('switchover');
      expect((await P.agent.waitForEvent('fenced', 10_000)).reason).toBe('switchover');
      expect(await hookEnv('P-demote')).toContain('MIMIC_REASON=switchover\n');
      // Every write the old primary had is on the new one; the other mirror follows it.
      await c.converged(P.dir, A.dir);
      // The old primary rejoins as a mirror by itself, and follows A like B does.
      await P.agent.waitForEvent('rejoining', 10_000);
      await writeFile(join(A.dir, 'new.txt'), 'on the new primary\n');
      await c.converged(A.dir, B.dir);
      await c.converged(A.dir, P.dir);
      expect(B.agent.events('promoted')).toEqual([]);
      const bad = await runMimic([
        'switchover',
        '--to',
        'nobody',
        '--etcd',
        etcd.endpoints[0]!,
        '--cluster',
        'www',
      ]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/switchover --to nobody: not a mirror/);
    } finally {
      await c.cleanup().catch(() => {});
      await etcd.stop();
    }
  });

  test('the most caught-up mirror wins over a higher priority; manual promote goes through etcd', {
    timeout: 60_000,
  }, async ({ cluster: c, expect }) => {
    const etcd = await startEtcd({ baseDir: await c.tempDir('etcd') });
    try {
      const { P, A, B, restart } = await cluster3(c, etcd.endpoints.join(','), '3');
      await c.converged(P.dir, B.dir);
      // While the primary leads, a manual promotion is refused by the leader transaction.
      const refused = await runMimic(['promote', '--state', join(B.dir, '.mimic')]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/ERR_NOT_LEADER/);
      // B (priority 5) falls behind: down while the primary writes, back just as it dies.
      await B.agent.stop();
      for (let i = 0; i < 20; i++) await writeFile(join(P.dir, `late${i}.txt`), `${i}\n`);
      await c.converged(P.dir, A.dir);
      await P.agent.kill9();
      const B2 = await restart('B');
      await A.agent.waitForEvent('promoted', 20_000);
      expect(B2.events('promoted')).toEqual([]);
      await c.converged(A.dir, B.dir);
    } finally {
      await c.cleanup().catch(() => {});
      await etcd.stop();
    }
  });

  test('an --on-promote hook that fails gives the leadership up, and another mirror takes it', {
    timeout: 60_000,
  }, async ({ cluster: c, expect }) => {
    const etcd = await startEtcd({ baseDir: await c.tempDir('etcd') });
    try {
      // B is preferred (priority 5), but its hook fails: it cannot take the address over, say.
      const { P, A, B } = await cluster3(c, etcd.endpoints.join(','), TTL, etcd.endpoints.join(','), [
        '--on-promote',
        'exit 3',
      ]);
      await c.converged(P.dir, A.dir);
      await c.converged(P.dir, B.dir);
      await P.agent.kill9();
      await B.agent.waitForEvent('promoted', 20_000);
      await A.agent.waitForEvent('promoted', 20_000);
      expect((await A.agent.status<PrimaryStatus>()).role).toBe('primary');
      expect(B.agent.events('rejoining')).toHaveLength(1);
      await writeFile(join(A.dir, 'after.txt'), 'A leads\n');
      await c.converged(A.dir, B.dir);
    } finally {
      await c.cleanup().catch(() => {});
      await etcd.stop();
    }
  });
});
