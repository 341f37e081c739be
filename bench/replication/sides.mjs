// The two sides of every replication workload: a mimic primary+mirror pair, and the baselines
// (an rsync daemon on loopback, rsync pushes into it, lsyncd).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Child,
  expectAll,
  freePort,
  mimicArgv,
  mimicStatus,
  now,
  runChecked,
  sleep,
  vmHwmKiB,
  waitForMirror,
  waitForPort,
} from '../lib.mjs';

/** Untimed and tree-sized waits give up when no file has arrived for this long. */
export const STALL_MS = 180_000;

/**
 * `mimic primary <src>` and `mimic mirror <dst>` on loopback. The primary's state lives outside the
 * source folder (so sources can be shared with the baselines); the mirror keeps its default
 * `<dst>/.mimic`, which every comparison skips.
 */
export class MimicPair {
  /**
   * `primaryArgs` and `mirrorArgs` go on each command line; `dialPort`, when given, is where the
   * mirror dials instead of the primary's port (a proxy in front of it).
   */
  constructor({ src, dst, primaryState, logDir, name, primaryArgs = [], mirrorArgs = [], dialPort }) {
    Object.assign(this, { src, dst, primaryState, logDir, name, primaryArgs, mirrorArgs, dialPort });
    this.mirrorState = join(dst, '.mimic');
    this.statusWarned = false;
  }

  /**
   * Starts the primary, then the mirror once the primary listens. `together` starts both at
   * once, as an operator starting the two agents does (the mirror dials until the primary
   * listens); `port` is then the primary's, from `freePort()` (call it before the clock starts).
   */
  async start({ together = false, port } = {}) {
    mkdirSync(this.dst, { recursive: true });
    port ??= await freePort();
    this.primary = new Child(
      `${this.name} primary`,
      mimicArgv(
        'primary',
        this.src,
        '--listen',
        `127.0.0.1:${port}`,
        '--state',
        this.primaryState,
        '--init',
        ...this.primaryArgs,
      ),
      { logFile: join(this.logDir, `${this.name}-primary.log`) },
    );
    if (!together) await waitForPort(port, { child: this.primary, timeoutMs: 120_000 });
    this.mirror = new Child(
      `${this.name} mirror`,
      mimicArgv(
        'mirror',
        this.dst,
        '--primary',
        `ws://127.0.0.1:${this.dialPort ?? port}`,
        ...this.mirrorArgs,
      ),
      {
        logFile: join(this.logDir, `${this.name}-mirror.log`),
      },
    );
  }

  assertRunning() {
    this.primary?.assertRunning();
    this.mirror?.assertRunning();
  }

  /** Resolve when the mirror holds the source tree exactly and, if status works, has applied all. */
  async waitInSync(timeoutMs) {
    try {
      await waitForMirror(this.src, this.dst, expectAll(this.src), {
        timeoutMs,
        intervalMs: 50,
        stallMs: STALL_MS,
        check: () => this.assertRunning(),
      });
      return await this.waitAcked(timeoutMs);
    } catch (e) {
      throw new Error(`catching up (untimed, before the change): ${e.message}`);
    }
  }

  /**
   * Poll both status outputs until the mirror is connected and its appliedSeq equals the primary's
   * seq; resolve with the primary's total bytesSent, or null when status does not answer.
   */
  async waitAcked(timeoutMs = 60_000) {
    const end = now() + timeoutMs;
    let failures = 0;
    for (;;) {
      this.assertRunning();
      let p;
      let m;
      try {
        [p, m] = await Promise.all([mimicStatus(this.primaryState), mimicStatus(this.mirrorState)]);
        failures = 0;
      } catch (e) {
        // A status read can race a state write; give up on wire bytes only when it keeps failing.
        if (++failures < 5) {
          await sleep(200);
          continue;
        }
        if (!this.statusWarned) console.log(`    (mimic status unusable, wire bytes unknown: ${e.message})`);
        this.statusWarned = true;
        return null;
      }
      const mirrors = Array.isArray(p.mirrors) ? p.mirrors : [];
      if (m.connected && m.appliedSeq === p.seq && mirrors.every((x) => x.ackedSeq === p.seq)) {
        return mirrors.reduce((sum, x) => sum + (x.bytesSent ?? 0), 0);
      }
      if (now() > end) {
        throw new Error(`mirror not caught up after ${timeoutMs} ms: seq ${p.seq}, applied ${m.appliedSeq}`);
      }
      await sleep(100);
    }
  }

  /** VmHWM (peak resident set, KiB) of both live processes. */
  peakRssKiB() {
    return { primary: vmHwmKiB(this.primary.pid), mirror: vmHwmKiB(this.mirror.pid) };
  }

  async stop() {
    await this.mirror?.stop();
    await this.primary?.stop();
  }
}

/**
 * The Node floor (node-floor.mjs, W2 only): its primary and mirror started at once, as W2 starts
 * mimic's. Both exit by themselves once the tree is across.
 */
export class NodeFloorPair {
  static SCRIPT = fileURLToPath(new URL('./node-floor.mjs', import.meta.url));

  /** `durable: false` runs its mirror with --no-sync (no syncfs at all, as rsync without --fsync). */
  constructor({ src, dst, primaryState, logDir, name, durable = true }) {
    Object.assign(this, { src, dst, primaryState, logDir, name, durable });
  }

  start(port) {
    mkdirSync(this.dst, { recursive: true });
    const side = (role, dir, ...rest) =>
      new Child(
        `${this.name} floor ${role}`,
        [process.execPath, NodeFloorPair.SCRIPT, role, dir, String(port), ...rest],
        { logFile: join(this.logDir, `${this.name}-floor-${role}.log`) },
      );
    this.primary = side('primary', this.src, this.primaryState);
    this.mirror = side('mirror', this.dst, ...(this.durable ? [] : ['--no-sync']));
  }

  /** Throws when either side failed (ending with status 0 is how both finish). */
  assertHealthy() {
    for (const c of [this.primary, this.mirror]) {
      if (c.proc.signalCode !== null || (c.proc.exitCode ?? 0) !== 0) c.assertRunning();
    }
  }

  /** Resolves once both have ended by themselves; false when they still run after `timeoutMs`. */
  ended(timeoutMs) {
    const both = Promise.all([this.primary.exited, this.mirror.exited]).then(() => true);
    return Promise.race([both, sleep(timeoutMs).then(() => false)]);
  }

  async stop() {
    await this.mirror?.stop();
    await this.primary?.stop();
  }
}

/** `rsync --daemon` on 127.0.0.1 with one writable module, `bench`, rooted at `<workDir>/rsyncd-root`. */
export class RsyncDaemon {
  static async start(workDir) {
    const d = new RsyncDaemon();
    d.root = join(workDir, 'rsyncd-root');
    mkdirSync(d.root, { recursive: true });
    const conf = join(workDir, 'rsyncd.conf');
    writeFileSync(
      conf,
      [
        'use chroot = no',
        'munge symlinks = no',
        'numeric ids = yes',
        `uid = ${process.getuid()}`,
        `gid = ${process.getgid()}`,
        `log file = ${join(workDir, 'rsyncd.log')}`,
        '',
        '[bench]',
        `  path = ${d.root}`,
        '  read only = no',
        '',
      ].join('\n'),
    );
    d.port = await freePort();
    d.child = new Child(
      'rsync daemon',
      ['rsync', '--daemon', '--no-detach', `--config=${conf}`, `--port=${d.port}`, '--address=127.0.0.1'],
      { logFile: join(workDir, 'rsyncd.out') },
    );
    await waitForPort(d.port, { child: d.child });
    return d;
  }

  /** Local path of a folder inside the module. */
  path(rel) {
    return join(this.root, rel);
  }

  url(rel) {
    return `rsync://127.0.0.1:${this.port}/bench/${rel}/`;
  }

  stop() {
    return this.child.stop();
  }
}

/**
 * Time `rsync <flags> --stats <src>/ <url>`. Wire bytes are rsync's own count: total bytes sent
 * plus total bytes received.
 */
export async function rsyncPush(flags, srcDir, url, timeoutMs = 600_000) {
  const r = await runChecked(['rsync', ...flags, '--stats', `${srcDir}/`, url], { timeoutMs, rss: false });
  const num = (label) => {
    const m = new RegExp(`${label}:\\s*([\\d,.]+)`).exec(r.stdout);
    return m ? Number(m[1].replace(/,/g, '')) : null;
  };
  const sent = num('Total bytes sent');
  const received = num('Total bytes received');
  return { ms: r.ms, bytes: sent === null || received === null ? null : sent + received };
}

/** Make `dst` an exact local copy of `src` (untimed resets between runs). */
export async function localSync(src, dst) {
  mkdirSync(dst, { recursive: true });
  await runChecked(['rsync', '-a', '--delete', `${src}/`, `${dst}/`], { rss: false });
}

/** Whether the installed rsync knows --fsync (3.2.4 and later). */
export async function rsyncHasFsync() {
  const r = await runChecked(['rsync', '--help'], { rss: false });
  return /--fsync\b/.test(r.stdout);
}

/** lsyncd syncing `src` into the local folder `dst` with default.rsync and delay = 0. */
export class Lsyncd {
  static start({ src, dst, workDir, name = 'lsyncd' }) {
    mkdirSync(dst, { recursive: true });
    const conf = join(workDir, `${name}.lua`);
    const q = (s) => JSON.stringify(s);
    writeFileSync(
      conf,
      [
        'settings {',
        '  nodaemon = true,',
        `  logfile = ${q(join(workDir, `${name}.log`))},`,
        `  statusFile = ${q(join(workDir, `${name}.status`))},`,
        '}',
        'sync {',
        '  default.rsync,',
        `  source = ${q(src)},`,
        `  target = ${q(dst)},`,
        '  delay = 0,',
        '}',
        '',
      ].join('\n'),
    );
    const l = new Lsyncd();
    l.child = new Child(name, ['lsyncd', '-nodaemon', conf], { logFile: join(workDir, `${name}.out`) });
    return l;
  }

  assertRunning() {
    this.child.assertRunning();
  }

  stop() {
    return this.child.stop();
  }
}
