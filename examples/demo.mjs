#!/usr/bin/env node
// A live tour on loopback: one primary, two mirrors, every kind of change, status, then a
// failover: the primary dies, a mirror is promoted, the old primary comes back fenced and rejoins.
// Everything lives in a temp folder that is removed at the end.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const MIMIC = join(here, '..', 'packages', 'cli', 'bin', 'mimic.js');
const started = Date.now();
const children = [];

function say(line) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[${t}s] ${line}\n`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function startAgent(name, args) {
  const child = spawn(process.execPath, [MIMIC, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.log = '';
  child.stderr.on('data', (d) => {
    child.log += d;
  });
  child.label = name;
  children.push(child);
  return child;
}

/** `mimic <args> --json`, parsed; throws (quietly: the demo polls) if the command fails. */
function mimicJson(args) {
  const out = execFileSync(process.execPath, [MIMIC, ...args, '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out);
}

function describeTree(root) {
  const out = new Map();
  const walk = (rel) => {
    for (const name of fs.readdirSync(join(root, rel)).sort()) {
      if (rel === '' && (name === '.mimic' || name === '.mimic-folder')) continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(join(root, r));
      if (st.isDirectory()) {
        out.set(r, `dir ${(st.mode & 0o7777).toString(8)}`);
        walk(r);
      } else if (st.isSymbolicLink()) {
        out.set(r, `link -> ${fs.readlinkSync(join(root, r))}`);
      } else {
        const h = createHash('sha256')
          .update(fs.readFileSync(join(root, r)))
          .digest('hex')
          .slice(0, 12);
        out.set(r, `file ${(st.mode & 0o7777).toString(8)} ${st.size} ${Math.floor(st.mtimeMs)} ${h}`);
      }
    }
  };
  walk('');
  return out;
}

function sameTree(a, b) {
  const x = describeTree(a);
  const y = describeTree(b);
  if (x.size !== y.size) return false;
  for (const [k, v] of x) if (y.get(k) !== v) return false;
  return true;
}

async function until(what, fn, timeoutMs = 20_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (fn()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function step(title, change, roots) {
  const t0 = Date.now();
  change();
  try {
    await until(title, () => roots.every((r) => sameTree(roots[0], r)));
  } catch (err) {
    for (const r of roots.slice(1)) {
      const x = describeTree(roots[0]);
      const y = describeTree(r);
      for (const k of new Set([...x.keys(), ...y.keys()])) {
        if (x.get(k) !== y.get(k))
          process.stderr.write(`  ${k}: primary ${x.get(k) ?? '(none)'}, mirror ${y.get(k) ?? '(none)'}\n`);
      }
    }
    throw err;
  }
  say(`${title.padEnd(52)} on both mirrors in ${Date.now() - t0} ms`);
}

async function main() {
  const base = await mkdtemp(join(tmpdir(), 'mimic-demo-'));
  const P = join(base, 'primary');
  const A = join(base, 'mirror-a');
  const B = join(base, 'mirror-b');
  for (const d of [P, A, B]) fs.mkdirSync(d);
  try {
    fs.mkdirSync(join(P, 'site', 'css'), { recursive: true });
    fs.writeFileSync(join(P, 'site', 'index.html'), '<h1>hello</h1>\n');
    fs.writeFileSync(join(P, 'site', 'css', 'main.css'), 'body { color: #333 }\n');
    fs.writeFileSync(join(P, 'data.bin'), Buffer.alloc(4 * 1024 * 1024, 7));
    const port = await freePort();
    const portA = await freePort();
    const portB = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const urlA = `ws://127.0.0.1:${portA}`;
    const all = [url, urlA, `ws://127.0.0.1:${portB}`].join(',');
    say(`primary ${P} listening on ${url}`);
    const primary = startAgent('primary', [
      'primary',
      P,
      '--listen',
      `127.0.0.1:${port}`,
      '--peers',
      all,
      '--init',
    ]);
    await until('the primary', () => fs.existsSync(join(P, '.mimic', 'control.sock')));
    say(`mirrors ${A} and ${B} follow it`);
    const hook = join(base, 'on-promote.txt');
    startAgent('mirror-a', [
      'mirror',
      A,
      '--primary',
      all,
      '--listen',
      `127.0.0.1:${portA}`,
      '--on-promote',
      `echo "epoch $MIMIC_EPOCH at $MIMIC_LISTEN" > '${hook}'`,
    ]);
    startAgent('mirror-b', ['mirror', B, '--primary', all, '--listen', `127.0.0.1:${portB}`]);
    const roots = [P, A, B];
    const t0 = Date.now();
    await until('the initial sync', () => sameTree(P, A) && sameTree(P, B));
    say(`initial sync: 3 files and 2 folders on both mirrors in ${Date.now() - t0} ms`);

    await step('new file', () => fs.writeFileSync(join(P, 'site', 'about.html'), '<p>about</p>\n'), roots);
    await step(
      'edit 100 bytes inside a 4 MiB file (sent as a delta)',
      () => {
        const fd = fs.openSync(join(P, 'data.bin'), 'r+');
        fs.writeSync(fd, Buffer.alloc(100, 9), 0, 100, 2_000_000);
        fs.closeSync(fd);
      },
      roots,
    );
    await step(
      'rename a file (sent as a rename, not as data)',
      () => fs.renameSync(join(P, 'data.bin'), join(P, 'data-v2.bin')),
      roots,
    );
    await step('new empty folder', () => fs.mkdirSync(join(P, 'uploads')), roots);
    await step('move a folder', () => fs.renameSync(join(P, 'site', 'css'), join(P, 'css')), roots);
    await step(
      'symlink (kept as a link)',
      () => fs.symlinkSync('site/index.html', join(P, 'index.html')),
      roots,
    );
    await step('chmod only', () => fs.chmodSync(join(P, 'site', 'about.html'), 0o600), roots);
    await step(
      'odd name: spaces, unicode, a leading dash',
      () => fs.writeFileSync(join(P, '-odd name ☃.txt'), 'x'),
      roots,
    );
    await step(
      'same size, same mtime rewrite',
      () => {
        const f = join(P, 'site', 'index.html');
        const st = fs.statSync(f);
        fs.writeFileSync(f, '<h1>HELLO</h1>\n');
        fs.utimesSync(f, st.atime, st.mtime);
      },
      roots,
    );
    await step(
      'delete a folder with its contents',
      () => fs.rmSync(join(P, 'css'), { recursive: true }),
      roots,
    );

    const p = mimicJson(['status', '--state', join(P, '.mimic')]);
    say(`primary status: seq ${p.seq}, ${p.files} paths, epoch ${p.epoch.term}`);
    for (const m of p.mirrors) {
      say(
        `  mirror ${m.id}: ${m.connected ? 'connected' : 'down'}, acked ${m.ackedSeq}, ${m.bytesSent} bytes sent`,
      );
    }
    for (const [name, dir] of [
      ['mirror-a', A],
      ['mirror-b', B],
    ]) {
      const s = mimicJson(['status', '--state', join(dir, '.mimic')]);
      say(
        `${name} status: applied seq ${s.appliedSeq}, ${s.bytesReceived} bytes received, following ${s.following}`,
      );
    }
    say('all mirrors match the primary exactly');

    say('--- failover ---');
    fs.writeFileSync(join(P, 'written-on-P-before-the-crash.txt'), 'this reached the mirrors\n');
    await until('the last write', () => sameTree(P, A) && sameTree(P, B));
    primary.kill('SIGKILL');
    await new Promise((r) => primary.once('exit', r));
    say('primary killed with SIGKILL');
    fs.writeFileSync(join(P, 'only-on-old-P.txt'), 'written on the dead primary after the crash\n');
    const promoted = execFileSync(
      process.execPath,
      [join(dirname(MIMIC), 'promote-mirror.js'), '--state', join(A, '.mimic')],
      {
        encoding: 'utf8',
      },
    );
    say(`promote-mirror on mirror-a: ${promoted.trim()}`);
    await until(
      'the on-promote hook',
      () => fs.existsSync(hook) && fs.readFileSync(hook, 'utf8').includes('epoch'),
    );
    say(`on-promote hook ran: ${fs.readFileSync(hook, 'utf8').trim()}`);
    await step(
      'write on the new primary; mirror-b follows it',
      () => fs.writeFileSync(join(A, 'after-failover.txt'), 'new epoch\n'),
      [A, B],
    );
    const b = mimicJson(['status', '--state', join(B, '.mimic')]);
    say(`mirror-b follows ${b.following} (epoch ${b.epoch.term}), applied seq ${b.appliedSeq}`);

    const back = startAgent('old-primary', ['primary', P, '--listen', `127.0.0.1:${port}`, '--peers', all]);
    await until('the old primary to notice', () => {
      try {
        return mimicJson(['status', '--state', join(P, '.mimic')]).role === 'fenced';
      } catch {
        return false;
      }
    });
    const f = mimicJson(['status', '--state', join(P, '.mimic')]);
    say(
      `old primary restarted: role ${f.role}, newer primary ${f.fencedBy.url} (epoch ${f.fencedBy.epoch.term}); it sends nothing`,
    );
    back.kill('SIGTERM');
    await new Promise((r) => back.once('exit', r));
    startAgent('old-primary-as-mirror', ['mirror', P, '--primary', urlA]);
    let r = null;
    await until(
      'the old primary to rejoin',
      () => {
        try {
          r = mimicJson(['status', '--state', join(P, '.mimic')]);
        } catch {
          return false;
        }
        return r.role === 'mirror' && r.connected && sameTree(A, P);
      },
      30_000,
    );
    r = mimicJson(['status', '--state', join(P, '.mimic')]);
    const kept = [];
    const walkKept = (d) => {
      for (const n of fs.readdirSync(d)) {
        const x = join(d, n);
        if (fs.statSync(x).isDirectory()) walkKept(x);
        else kept.push(x.slice(join(P, '.mimic', 'diverged').length + 1));
      }
    };
    walkKept(join(P, '.mimic', 'diverged'));
    say(
      `old primary rejoined as a mirror: converged, ${r.diverged} divergent file(s) kept under .mimic/diverged/: ${kept.join(', ')}`,
    );
    say('done');
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)),
    );
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  for (const c of children) {
    if (c.log) process.stderr.write(`--- ${c.label} log ---\n${c.log.split('\n').slice(-15).join('\n')}\n`);
  }
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  process.exitCode = 1;
});
