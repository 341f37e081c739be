// The Node floor for W2: the least a replicator written in Node, on mimic's stack and with
// mimic's promises, does to copy a tree into an empty mirror. Not a product: no watcher, no
// protocol checks, no acknowledgements, no resume, whole files only, one mirror. What it keeps
// is what no such replicator can skip:
//   primary: list the tree, read and hash (xxh64) every file, journal each write and record each
//            file in SQLite (WAL) before sending it, send over a WebSocket (ws) in msgpackr
//            messages of up to 256 files or 1 MiB, pausing while 8 MiB wait to be sent;
//   mirror:  write each file to a temp file that never carries a final name, check its hash, set
//            its mtime, then, for 2,048 files at a time: syncfs, rename each into place (after an
//            lstat of the final name, as a mirror must look before it overwrites), syncfs again
//            (the renames), and record the files in SQLite; its socket pauses while 16
//            messages wait to be applied.
// W2 runs it beside mimic: floor / rsync is what the platform allows, mimic / floor what is
// mimic's own. With --no-sync its mirror skips both syncfs calls and promises nothing durable
// (as rsync without --fsync): what the platform allows without the fsyncs. Its files and messages
// are not mimic's formats.
//   node node-floor.mjs primary <src> <port> <state-dir>
//   node node-floor.mjs mirror <dst> <port> [--no-sync]
import {
  closeSync,
  constants,
  fstatSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { contentHash } from '@mimic/delta';
import Database from 'better-sqlite3';
import { Packr, Unpackr } from 'msgpackr';
import { WebSocket, WebSocketServer } from 'ws';
// syncfs as mimic's mirror runs it (the agent keeps the class to itself).
import { FileSystemSync } from '../../packages/agent/dist/node/fs-sync.js';

const BATCH_FILES = 256;
const MESSAGE_BYTES = 1 << 20;
const SEND_WINDOW = 8 << 20;
const LAND_FILES = 2048;
const MAX_MESSAGE = 256 << 20;
/** Messages received and not yet applied, at most; the socket pauses past it. */
const QUEUE_MESSAGES = 16;

const [role, dir, port, state] = process.argv.slice(2);
const durable = !(role === 'mirror' && process.argv[5] === '--no-sync');

function openDb(path, ddl) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(ddl);
  return db;
}

const FILES_TABLE =
  'create table if not exists files (path text primary key, size int, mtime real, mode int, ino int, ctime real, hash text)';

async function primary() {
  mkdirSync(state, { recursive: true });
  const db = openDb(
    join(state, 'floor.db'),
    `${FILES_TABLE}; create table if not exists journal (seq integer primary key, op blob)`,
  );
  const journal = db.prepare('insert into journal (seq, op) values (?, ?)');
  const record = db.prepare('insert or replace into files values (?, ?, ?, ?, ?, ?, ?)');
  const packr = new Packr({ useRecords: false });
  let seq = 0;
  const commit = db.transaction((ops, stats) => {
    for (let i = 0; i < ops.length; i++) {
      const { data, ...op } = ops[i];
      journal.run(++seq, packr.pack(op));
      const st = stats[i];
      if (st) record.run(op.path, st.size, st.mtimeMs, st.mode, st.ino, st.ctimeMs, op.hash);
    }
  });

  const server = new WebSocketServer({ host: '127.0.0.1', port: Number(port), perMessageDeflate: false });
  const connected = new Promise((resolve) => server.once('connection', resolve));
  const entries = [];
  const walk = (rel) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? e.name : `${rel}/${e.name}`;
      entries.push({ rel: child, isDir: e.isDirectory() });
      if (e.isDirectory()) walk(child);
    }
  };
  walk('');
  const ws = await connected;

  let out = [];
  let outBytes = 0;
  const flush = async () => {
    if (out.length === 0) return;
    ws.send(packr.pack({ type: 'ops', ops: out }));
    out = [];
    outBytes = 0;
    while (ws.bufferedAmount > SEND_WINDOW) await new Promise((r) => setTimeout(r, 1));
  };
  for (let i = 0; i < entries.length; i += BATCH_FILES) {
    const ops = [];
    const stats = [];
    for (const { rel, isDir } of entries.slice(i, i + BATCH_FILES)) {
      if (isDir) {
        ops.push({ kind: 'mkdir', path: rel, mode: 0o755 });
        stats.push(null);
        continue;
      }
      const fd = openSync(join(dir, rel), constants.O_RDONLY | constants.O_NOFOLLOW);
      const st = fstatSync(fd);
      const data = Buffer.allocUnsafeSlow(st.size);
      for (let n = 0; n < st.size; ) {
        const got = readSync(fd, data, n, st.size - n, n);
        if (got === 0) throw new Error(`${rel}: shrank while read`);
        n += got;
      }
      closeSync(fd);
      const mode = st.mode & 0o7777;
      ops.push({ kind: 'write', path: rel, mode, mtimeMs: st.mtimeMs, hash: contentHash(data), data });
      stats.push(st);
    }
    commit(ops, stats); // journaled before it leaves, as mimic does
    for (const op of ops) {
      out.push(op);
      outBytes += op.data?.length ?? 0;
      if (out.length >= BATCH_FILES || outBytes >= MESSAGE_BYTES) await flush();
    }
  }
  await flush();
  ws.send(packr.pack({ type: 'end' }));
  ws.on('close', () => {
    db.close();
    process.exit(0);
  });
}

async function mirror() {
  const meta = join(dir, '.mimic');
  const tmp = join(meta, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const db = openDb(join(meta, 'floor.db'), FILES_TABLE);
  const record = db.prepare('insert or replace into files values (?, ?, ?, ?, ?, ?, ?)');
  const recordAll = db.transaction((recs) => {
    for (const r of recs) record.run(r.path, r.size, r.mtimeMs, r.mode, r.ino, r.ctimeMs, r.hash);
  });
  // Without --no-sync, as mimic's mirror does; with it, nothing.
  const fsSync = durable ? new FileSystemSync(dir) : { sync: async () => {}, close: () => {} };
  const unpackr = new Unpackr({ useRecords: false });

  let tmpCount = 0;
  let pending = [];
  let landing = Promise.resolve();
  const land = async (batch) => {
    await fsSync.sync(); // contents durable before any takes its final name
    const recs = [];
    for (const p of batch) {
      const final = join(dir, p.path);
      lstatSync(final, { throwIfNoEntry: false });
      renameSync(p.tmp, final);
      const st = fstatSync(p.fd);
      closeSync(p.fd);
      recs.push({ ...p.rec, size: st.size, ino: st.ino, ctimeMs: st.ctimeMs });
    }
    await fsSync.sync(); // the renames
    recordAll(recs);
  };
  const apply = async (ops) => {
    for (const op of ops) {
      if (op.kind === 'mkdir') {
        mkdirSync(join(dir, op.path), { mode: op.mode, recursive: true });
        continue;
      }
      if (contentHash(op.data) !== op.hash) throw new Error(`${op.path}: content does not match its hash`);
      const temp = join(tmp, `${(tmpCount++).toString(36)}.part`);
      const fd = openSync(temp, 'wx', op.mode & 0o777);
      for (let n = 0; n < op.data.length; ) n += writeSync(fd, op.data, n);
      futimesSync(fd, op.mtimeMs / 1000, op.mtimeMs / 1000);
      pending.push({
        fd,
        tmp: temp,
        path: op.path,
        rec: { path: op.path, mtimeMs: op.mtimeMs, mode: op.mode, hash: op.hash },
      });
      if (pending.length >= LAND_FILES) {
        await landing;
        landing = land(pending);
        pending = [];
      }
    }
  };

  const ws = await connect(`ws://127.0.0.1:${port}`);
  const queue = [];
  let draining = false;
  const drain = async () => {
    draining = true;
    while (queue.length > 0) {
      const msg = queue.shift();
      if (ws.isPaused && queue.length <= QUEUE_MESSAGES / 2) ws.resume();
      if (msg.type === 'ops') await apply(msg.ops);
      else {
        await landing;
        await land(pending);
        db.close();
        fsSync.close();
        ws.close();
        return;
      }
    }
    draining = false;
  };
  ws.on('message', (data) => {
    queue.push(unpackr.unpack(data));
    if (queue.length >= QUEUE_MESSAGES) ws.pause(); // the primary's window then fills and it waits
    if (!draining) drain().catch(fail);
  });
}

/** Dials until the primary listens (both start at once). */
async function connect(url) {
  for (let attempt = 0; ; attempt++) {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_MESSAGE });
    const ok = await new Promise((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('error', () => resolve(false));
    });
    if (ok) return ws;
    if (attempt >= 3000) throw new Error(`${url}: no primary after 60 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function fail(err) {
  console.error(`node-floor ${role}: ${err.message}`);
  process.exit(1);
}

if (role === 'primary') primary().catch(fail);
else if (role === 'mirror') mirror().catch(fail);
else fail(new Error(`unknown role ${role}; use primary or mirror`));
