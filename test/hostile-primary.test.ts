import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, type ExpectStatic } from 'vitest';
import {
  type Agent,
  type Cluster,
  test as clusterTest,
  type LogLine,
  sleep,
  waitFor,
} from './helpers/cluster.js';
import {
  type Fingerprint,
  fingerprint,
  fingerprintDiff,
  HostilePrimary,
  type HostileSession,
  type Outcome,
  rawPack,
  writeParts,
} from './helpers/hostile.js';

/*
 * A real `mimic mirror` process following a primary that lies: paths that leave the root,
 * writes through symlinks, content that does not match its hash, parts out of order, frames
 * too large or not msgpack at all. After every hostile connection:
 *
 *   - nothing outside the mirror root was created, changed or removed (an "outside" folder next
 *     to the root is compared byte for byte, inode, mode and times included);
 *   - the mirror process is still running;
 *   - the mirror refused: it closed that connection itself and logged why;
 *   - it dialed again, and a well-behaved session that follows still gets a file across.
 *
 * Each session's outcome and the mirror's log lines for it are kept in the test's `meta.hostile`
 * (`--reporter=json` shows them, for passing tests too) and printed when a test fails.
 */

const MTIME = 1_700_000_000_000;
const OUR_CLOSE_REASON = 'hostile session over';

interface Scene {
  root: string;
  outside: string;
  /** Relative path from the mirror root to the outside folder. */
  outsideRel: string;
  before: Map<string, Fingerprint>;
  evil: HostilePrimary;
  mirror: Agent;
  cluster: Cluster;
  good: number;
  /** Records a line for the test report. */
  note: (message: string) => void;
}

/** Files a primary has no business touching, in a folder next to the mirror root. */
async function seedOutside(outside: string): Promise<void> {
  await writeFile(join(outside, 'victim.txt'), 'outside content, must never change\n', { mode: 0o644 });
  await mkdir(join(outside, 'sub'), { mode: 0o755 });
  await writeFile(join(outside, 'sub', 'inner.txt'), 'also outside\n', { mode: 0o600 });
}

const test = clusterTest.extend<{ scene: Scene }>({
  scene: async ({ cluster, task, onTestFailed }, use) => {
    const notes: string[] = [];
    (task.meta as { hostile?: string[] }).hostile = notes;
    onTestFailed(() => {
      console.error(notes.join('\n'));
    });
    const root = await cluster.tempDir('mirror');
    const outside = await cluster.tempDir('outside');
    await seedOutside(outside);
    const before = await fingerprint(outside);
    const evil = await HostilePrimary.start();
    try {
      const mirror = await cluster.mirror(root, evil.url, { wait: 'spawned' });
      await use({
        root,
        outside,
        outsideRel: `../${basename(outside)}`,
        before,
        evil,
        mirror,
        cluster,
        good: 0,
        note: (message) => notes.push(message),
      });
    } finally {
      await evil.close();
    }
  },
});

type Attack = (s: HostileSession, sc: Scene) => Promise<number | null> | number | null;

interface SessionReport {
  outcome: Outcome;
  lines: LogLine[];
}

function linesSince(mirror: Agent, mark: number): LogLine[] {
  const out: LogLine[] = [];
  for (const line of mirror.stderr.slice(mark).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // cut line
    }
  }
  return out;
}

function brief(lines: LogLine[]): string {
  return lines
    .map(({ time: _t, role: _r, ...rest }) => JSON.stringify(rest))
    .join('\n    ')
    .slice(0, 2000);
}

function describeOutcome(o: Outcome): string {
  if (o.kind === 'closed')
    return `closed by ${o.by} (${o.code}${o.reason ? ` ${JSON.stringify(o.reason)}` : ''})`;
  if (o.kind === 'acked') return `applied and acknowledged (seq ${o.seq})`;
  return 'neither acknowledged nor closed';
}

/** One connection: handshake, the attack, then whatever the mirror does about it. */
async function hostileSession(sc: Scene, name: string, attack: Attack): Promise<SessionReport> {
  const mark = sc.mirror.stderr.length;
  const s = await sc.evil.nextSession();
  await s.handshake();
  const seq = await attack(s, sc);
  const outcome = await s.settle(seq, 5_000);
  if (outcome.kind !== 'closed') await s.end(1000, OUR_CLOSE_REASON);
  // The mirror logs its side of the close right after it; give the line a moment to arrive.
  for (let i = 0; i < 40 && !linesSince(sc.mirror, mark).some((l) => l.event === 'disconnected'); i++) {
    await sleep(25);
  }
  const lines = linesSince(sc.mirror, mark);
  sc.note(`${name}: ${describeOutcome(outcome)}\n    ${brief(lines)}`);
  return { outcome, lines };
}

/** A log line that gives a reason for ending the connection, other than our own close. */
function refusalLine(lines: LogLine[]): LogLine | undefined {
  return lines.find((l) => {
    if (!['apply-failed', 'disconnected', 'refused', 'protocol-error'].includes(l.event)) return false;
    const why = String(l.reason ?? l.error ?? l.code ?? '');
    return why !== '' && why !== OUR_CLOSE_REASON;
  });
}

function expectRefused(expect: ExpectStatic, name: string, r: SessionReport): void {
  expect
    .soft(
      r.outcome.kind === 'closed' && r.outcome.by === 'mirror',
      `${name}: the mirror should refuse and close the connection, but it was ${describeOutcome(r.outcome)}\n    mirror log:\n    ${brief(r.lines)}`,
    )
    .toBe(true);
  expect.soft(refusalLine(r.lines), `${name}: no refusal reason in the mirror's log`).toBeDefined();
}

async function expectOutsideUntouched(expect: ExpectStatic, sc: Scene, when: string): Promise<void> {
  const diff = fingerprintDiff(sc.before, await fingerprint(sc.outside));
  if (diff.length > 0) sc.note(`outside changed ${when}:\n    ${diff.join('\n    ')}`);
  expect.soft(diff, `the outside folder changed ${when}`).toEqual([]);
}

function expectAlive(expect: ExpectStatic, sc: Scene): void {
  let alive = sc.mirror.running;
  try {
    process.kill(sc.mirror.pid, 0);
  } catch {
    alive = false;
  }
  expect(alive, `the mirror process should still run\n${sc.mirror.describe()}`).toBe(true);
}

/** The mirror dials again and a well-behaved session still gets a file across. */
async function expectRecovers(expect: ExpectStatic, sc: Scene): Promise<void> {
  const s = await sc.evil.nextSession();
  await s.handshake();
  const name = `good-${++sc.good}.txt`;
  const content = `good content ${sc.good}\n`;
  const seq = s.write(name, content);
  expect(await s.waitAck(seq), `the good write ${name} should be acknowledged\n${sc.mirror.describe()}`).toBe(
    true,
  );
  expect(await readFile(join(sc.root, name), 'utf8')).toBe(content);
  await s.end(1000, OUR_CLOSE_REASON);
}

/**
 * Runs each attack on its own connection and checks that it was refused, then that the mirror
 * lives on, recovers, and never touched the outside folder.
 */
async function refusedEach(expect: ExpectStatic, sc: Scene, attacks: [string, Attack][]): Promise<void> {
  for (const [name, attack] of attacks) {
    const r = await hostileSession(sc, name, attack);
    expectRefused(expect, name, r);
    await expectOutsideUntouched(expect, sc, `after ${name}`);
    expectAlive(expect, sc);
  }
  await expectRecovers(expect, sc);
  await expectOutsideUntouched(expect, sc, 'after the good session');
  expectAlive(expect, sc);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

const EPOCH = { term: 1, node: 'evil' };

/** Sends one frame as it is; nothing to wait an ack for. */
const frame =
  (bytes: Uint8Array | string, binary = true): Attack =>
  (s) => {
    s.sendBytes(bytes, { binary });
    return null;
  };

/** Sends one msgpack value as it is. */
const message =
  (value: unknown): Attack =>
  (s) => {
    s.send(value);
    return null;
  };

const symlinkOp = (path: string, target: string) => ({ kind: 'symlink', path, target, mtimeMs: MTIME });
const mkdirOp = (path: string, mode = 0o755) => ({ kind: 'mkdir', path, mode, mtimeMs: MTIME });

/** One op of each kind that carries `path` (as its destination or its source). */
function opsOnPath(path: string): [string, object][] {
  return [
    ['write', writeParts(path, 'overwritten')[0]!],
    ['mkdir', mkdirOp(path)],
    ['symlink', symlinkOp(path, '/etc/passwd')],
    ['delete', { kind: 'delete', path }],
    ['rename from', { kind: 'rename', from: path, to: 'stolen.txt' }],
    ['rename to', { kind: 'rename', from: 'planted.txt', to: path }],
    ['meta', { kind: 'meta', path, mode: 0o777, mtimeMs: MTIME }],
  ];
}

describe('a hostile primary', () => {
  describe('paths that leave the root or enter the state folder', () => {
    const cases: [string, (sc: Scene) => string][] = [
      ['an absolute path', (sc) => join(sc.outside, 'victim.txt')],
      ['a leading ..', (sc) => `${sc.outsideRel}/victim.txt`],
      ['a .. in the middle', (sc) => `a/../${sc.outsideRel}/victim.txt`],
      ['the .mimic state folder', () => '.mimic/x'],
      ['a NUL character', () => 'victim.txt\0.ignored'],
    ];
    test.for(cases)('%s is refused for every op kind', async ([label, pathOf], { scene: sc, expect }) => {
      const attacks = opsOnPath(pathOf(sc)).map(([kind, op]): [string, Attack] => [
        `${label} in a ${kind} op`,
        (s) => s.op(op),
      ]);
      await refusedEach(expect, sc, attacks);
      expect(await exists(join(sc.root, '.mimic', 'x'))).toBe(false);
    });
  });

  describe('junk on the connection', () => {
    test('bytes that are not msgpack, text frames and unknown messages each close only that connection', async ({
      scene: sc,
      expect,
    }) => {
      const one = rawPack({ type: 'ack', epoch: EPOCH, seq: 1 });
      await refusedEach(expect, sc, [
        ['junk bytes', frame(Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37]))],
        ['plain text in a binary frame', frame(Buffer.from('not msgpack at all, just text'))],
        ['two msgpack values in one frame', frame(Buffer.concat([one, one]))],
        ['a truncated message', frame(rawPack(writeParts('t.txt', 'x'.repeat(100))[0]).subarray(0, 40))],
        ['an empty frame', frame(new Uint8Array(0))],
        ['a text frame', frame('{"type":"op"}', false)],
        ['an unknown message type', message({ type: 'takeover', epoch: EPOCH })],
        ['an unknown op kind', (s) => s.op({ kind: 'chown', path: 'a.txt', uid: 0, gid: 0 })],
        ['an op with an extra field', (s) => s.op({ ...mkdirOp('d'), followSymlinks: true })],
        ['a field of the wrong type', message({ type: 'op', epoch: EPOCH, seq: 'one', op: mkdirOp('d') })],
        ['a message only a mirror sends', message({ type: 'need', epoch: EPOCH, path: 'a.txt' })],
      ]);
    });

    test('oversized frames are refused before they are decoded', async ({ scene: sc, expect }) => {
      const MiB = 1024 * 1024;
      await refusedEach(expect, sc, [
        [
          'a write op of 9 MiB (over the 8 MiB message limit)',
          (s) => s.write('big.bin', new Uint8Array(9 * MiB)),
        ],
        ['a 17 MiB frame (over the socket limit)', frame(new Uint8Array(17 * MiB).fill(0x61))],
      ]);
      expect(await exists(join(sc.root, 'big.bin'))).toBe(false);
    });
  });

  describe('content and order', () => {
    test('a write whose data does not match its hash or size is refused and never lands', async ({
      scene: sc,
      expect,
    }) => {
      await refusedEach(expect, sc, [
        ['a wrong hash', (s) => s.write('bad-hash.txt', 'the real bytes', { hash: '0123456789abcdef' })],
        ['a wrong size', (s) => s.write('bad-size.txt', 'the real bytes', { size: 3 })],
        [
          'a wrong hash over several parts',
          (s) => s.write('bad-parts.txt', 'x'.repeat(1000), { partSize: 300, hash: 'fedcba9876543210' }),
        ],
      ]);
      for (const name of ['bad-hash.txt', 'bad-size.txt', 'bad-parts.txt']) {
        expect(await exists(join(sc.root, name)), name).toBe(false);
      }
      expect(await readdir(join(sc.root, '.mimic', 'tmp'))).toEqual([]);
    });

    test('a write marked torn (abort) leaves the copy the mirror holds, in one part or several', async ({
      scene: sc,
      expect,
    }) => {
      const s = await sc.evil.nextSession();
      await s.handshake();
      expect(await s.waitAck(s.write('kept.txt', 'the version the mirror holds\n'))).toBe(true);
      expect(await s.waitAck(s.write('kept.txt', 'read while it changed\n', { abort: true }))).toBe(true);
      const inParts = s.write('kept.txt', 'read while it changed, in parts\n', { abort: true, partSize: 8 });
      expect(await s.waitAck(inParts)).toBe(true);
      expect(await readFile(join(sc.root, 'kept.txt'), 'utf8')).toBe('the version the mirror holds\n');
      expect(await readdir(join(sc.root, '.mimic', 'tmp'))).toEqual([]);
    });

    test('after an op that fails, nothing more from that connection is applied, and the mirror reconciles next', async ({
      scene: sc,
      expect,
    }) => {
      const s = await sc.evil.nextSession();
      await s.handshake();
      expect(await s.waitAck(s.write('before.txt', 'applied\n'))).toBe(true);
      const mark = sc.mirror.stderr.length;
      // A delta against a copy the mirror does not have: it fails, and the mirror closes. Our
      // side reads nothing meanwhile, so the mirror's close frame waits unread and the ops that
      // follow reach it before the close completes, as a busy primary's would.
      s.ws.pause();
      const failed = s.op({
        ...writeParts('missing.bin', 'not a patch of anything')[0]!,
        encoding: 'delta',
        baseHash: '0123456789abcdef',
      });
      await waitFor(
        () => linesSince(sc.mirror, mark).find((l) => l.event === 'apply-failed'),
        10_000,
        'the mirror to refuse the delta',
        { details: () => sc.mirror.describe() },
      );
      await sleep(200); // the mirror closing the connection after its log line
      s.write('after.txt', 'follows the op that failed\n');
      s.op(mkdirOp('after-dir'));
      s.ws.resume();
      const closed = await s.closed;
      expect(closed.by).toBe('mirror');
      expect(closed.reason).toMatch(/^ERR_BASIS_MISMATCH/);
      expect(s.acked).toBeLessThan(failed);
      expect(await exists(join(sc.root, 'after.txt'))).toBe(false);
      expect(await exists(join(sc.root, 'after-dir'))).toBe(false);
      // It has not applied `failed`: it must not resume past it.
      const next = await sc.evil.nextSession();
      await next.handshake();
      expect(next.mode).toBe('reconcile');
      await next.end(1000, OUR_CLOSE_REASON);
      await expectRecovers(expect, sc);
    });

    test('parts out of order are refused', async ({ scene: sc, expect }) => {
      const sendParts = (s: HostileSession, parts: object[]) => {
        let seq = 0;
        for (const op of parts) seq = s.op(op);
        return seq;
      };
      const a = writeParts('a.txt', 'aaaa-aaaa-aaaa', { partSize: 5 });
      const b = writeParts('b.txt', 'bbbb-bbbb-bbbb', { partSize: 5 });
      // Parts 0 and 2 only, announced with the hash of exactly those bytes.
      const gap = writeParts('gap.txt', 'aaaaacccc', { partSize: 5 }).map((p, i) => ({
        ...p,
        part: i === 0 ? 0 : 2,
      }));
      await refusedEach(expect, sc, [
        ['part 1 before part 0', (s) => sendParts(s, [a[1]!, a[0]!, a[2]!])],
        ['a part of another file in the middle', (s) => sendParts(s, [a[0]!, b[1]!, a[1]!, a[2]!])],
        ['another file started in the middle', (s) => sendParts(s, [a[0]!, b[0]!, a[1]!, a[2]!])],
        ['a mkdir in the middle of a file', (s) => sendParts(s, [a[0]!, mkdirOp('d'), a[1]!, a[2]!])],
        ['part 0 sent twice', (s) => sendParts(s, [a[0]!, a[0]!, a[1]!, a[2]!])],
        ['a part number skipped', (s) => sendParts(s, gap)],
      ]);
      for (const name of ['a.txt', 'b.txt', 'gap.txt']) {
        expect(await exists(join(sc.root, name)), name).toBe(false);
      }
    });
  });

  describe('symlinks', () => {
    const d = (sc: Scene) => symlinkOp('d', sc.outside);

    const attacks: [string, Attack][] = [
      [
        'a write below a symlink to an outside folder (new name)',
        (s, sc) => {
          s.op(symlinkOp('evil', sc.outside));
          return s.write('evil/pwned.txt', 'pwned');
        },
      ],
      [
        'a write below a symlink to an outside folder (existing name)',
        (s, sc) => {
          s.op(symlinkOp('evil', sc.outside));
          return s.write('evil/victim.txt', 'overwritten');
        },
      ],
      [
        'a write two levels below the symlink, into an existing outside folder',
        (s, sc) => {
          s.op(d(sc));
          return s.write('d/sub/new.txt', 'planted');
        },
      ],
      [
        'a write below a symlink that points back inside the root',
        (s) => {
          s.op(mkdirOp('real'));
          s.op(symlinkOp('alias', 'real'));
          return s.write('alias/f.txt', 'through an alias');
        },
      ],
      [
        'a folder replaced by a symlink after its files were applied, then a write into it',
        async (s, sc) => {
          s.op(mkdirOp('d'));
          const seq = s.write('d/a.txt', 'a');
          await s.waitAck(seq, 5_000);
          s.op(d(sc));
          return s.write('d/victim.txt', 'overwritten');
        },
      ],
      [
        'a folder made through a symlinked folder',
        (s, sc) => {
          s.op(d(sc));
          return s.op(mkdirOp('d/sub', 0o777));
        },
      ],
      [
        'a symlink made through a symlinked folder',
        (s, sc) => {
          s.op(d(sc));
          return s.op(symlinkOp('d/planted', '/etc/passwd'));
        },
      ],
      [
        'a rename into a symlinked folder',
        (s, sc) => {
          s.write('x.txt', 'planted');
          s.op(d(sc));
          return s.op({ kind: 'rename', from: 'x.txt', to: 'd/planted.txt' });
        },
      ],
    ];

    test.for(attacks)(
      '%s is refused and writes nothing outside',
      async ([name, attack], { scene: sc, expect }) => {
        await refusedEach(expect, sc, [[name, attack]]);
      },
    );

    // Ops that only remove or adjust: below what is now a link, the path is already absent
    // (a replay after a partly applied batch meets exactly this), so they are applied as
    // no-ops and acknowledged, and reach nothing through the link.
    const absent: [string, Attack][] = [
      [
        'a delete through a symlinked folder',
        (s, sc) => {
          s.op(d(sc));
          return s.op({ kind: 'delete', path: 'd/victim.txt' });
        },
      ],
      [
        'a rename out of a symlinked folder',
        (s, sc) => {
          s.op(d(sc));
          return s.op({ kind: 'rename', from: 'd/victim.txt', to: 'stolen.txt' });
        },
      ],
      [
        'a meta change through a symlinked folder',
        (s, sc) => {
          s.op(d(sc));
          return s.op({ kind: 'meta', path: 'd/victim.txt', mode: 0o777, mtimeMs: MTIME });
        },
      ],
    ];

    test.for(absent)(
      '%s is already absent: acknowledged, and touches nothing outside',
      async ([name, attack], { scene: sc, expect }) => {
        const r = await hostileSession(sc, name, attack);
        expect(r.outcome.kind, `${name}: ${describeOutcome(r.outcome)}\n    ${brief(r.lines)}`).toBe('acked');
        await expectOutsideUntouched(expect, sc, `after ${name}`);
        expect(await exists(join(sc.root, 'stolen.txt'))).toBe(false);
        expectAlive(expect, sc);
        await expectRecovers(expect, sc);
      },
    );

    test('a write still pending when its folder becomes a symlink lands inside the root first, never outside', async ({
      scene: sc,
      expect,
    }) => {
      // A legitimate order of events on a primary: the file is written, then its folder is
      // replaced by a link. The mirror commits the file where it belongs before it replaces
      // the folder, so the link never redirects it.
      await hostileSession(sc, 'pending write, then its folder becomes a symlink', (s, scene) => {
        s.op(mkdirOp('d'));
        s.write('d/victim.txt', 'overwritten');
        return s.op(d(scene));
      });
      await expectOutsideUntouched(expect, sc, 'after the pending write');
      expectAlive(expect, sc);
      await expectRecovers(expect, sc);
      await expectOutsideUntouched(expect, sc, 'after the good session');
    });

    test('a symlink as the final component is replaced, removed or left alone, never followed', async ({
      scene: sc,
      expect,
    }) => {
      const victim = join(sc.outside, 'victim.txt');
      const cases: [string, Attack, () => Promise<void>][] = [
        [
          'a write over a symlink to an outside file',
          (s) => {
            s.op(symlinkOp('f', victim));
            return s.write('f', 'replaced');
          },
          async () => {
            expect((await lstat(join(sc.root, 'f'))).isFile()).toBe(true);
            expect(await readFile(join(sc.root, 'f'), 'utf8')).toBe('replaced');
          },
        ],
        [
          'a delete of a symlink to an outside file',
          (s) => {
            s.op(symlinkOp('g', victim));
            return s.op({ kind: 'delete', path: 'g' });
          },
          async () => expect(await exists(join(sc.root, 'g'))).toBe(false),
        ],
        [
          'a meta change of a symlink to an outside file',
          (s) => {
            s.op(symlinkOp('h', victim));
            return s.op({ kind: 'meta', path: 'h', mode: 0o777, mtimeMs: MTIME });
          },
          async () => expect((await lstat(join(sc.root, 'h'))).isSymbolicLink()).toBe(true),
        ],
      ];
      for (const [name, attack, check] of cases) {
        const r = await hostileSession(sc, name, attack);
        expect
          .soft(r.outcome.kind, `${name}: ${describeOutcome(r.outcome)}\n    ${brief(r.lines)}`)
          .toBe('acked');
        await check();
        await expectOutsideUntouched(expect, sc, `after ${name}`);
        expectAlive(expect, sc);
      }
      await expectRecovers(expect, sc);
      await expectOutsideUntouched(expect, sc, 'after the good session');
    });
  });
});
