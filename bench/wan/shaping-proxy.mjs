// A TCP proxy on 127.0.0.1 that behaves like a slow, distant link: each direction is a token
// bucket at `mbit` Mbit/s (chunks leave in order, one after another, as on a wire of that rate)
// followed by `rttMs / 2` of delay. It counts the bytes each way. Shaping can be switched off for
// untimed set-up (copying a basis) and on for the timed part; counts are read and reset on request.
//
// Run as a forked child of the bench (its event loop then belongs to the link alone):
//   node shaping-proxy.mjs <target port> <mbit> <rtt ms>
// It answers on its IPC channel: { port } once listening; then commands
//   { id, cmd: 'shape', on } → { id }      { id, cmd: 'stats', reset } → { id, up, down }
// up is client → target, down target → client, in bytes of TCP payload.
import { createConnection, createServer } from 'node:net';

/** Largest piece of a chunk timed on its own: a few packets, so delivery stays smooth. */
const SLICE_BYTES = 16 * 1024;
/** Bytes waiting on the link before the sender is paused (the bottleneck's buffer, ~100 ms). */
const QUEUE_BYTES = 256 * 1024;

const [targetPort, mbit = '20', rttMs = '50'] = process.argv.slice(2).map(Number);
const bytesPerMs = (mbit * 1e6) / 8 / 1000;
const oneWayMs = rttMs / 2;

let shaped = false;
const counts = { up: 0, down: 0 };

/** One direction of one connection: slices due at their time on the wire, written in order. */
class Lane {
  constructor(src, dst, counter) {
    this.src = src;
    this.dst = dst;
    this.counter = counter;
    this.queue = [];
    this.queued = 0;
    this.busyUntil = 0;
    this.lastDue = 0;
    this.timer = null;
    this.ended = false;
    this.drainWait = false;
    dst.on('drain', () => {
      this.drainWait = false;
      this.flush();
    });
  }

  push(chunk) {
    counts[this.counter] += chunk.length;
    const now = performance.now();
    for (let at = 0; at < chunk.length; at += SLICE_BYTES) {
      const slice = chunk.subarray(at, at + SLICE_BYTES);
      let due = now;
      if (shaped) {
        // On the wire once the slices before it are; there after the one-way delay.
        const start = Math.max(now, this.busyUntil);
        this.busyUntil = start + slice.length / bytesPerMs;
        due = this.busyUntil + oneWayMs;
      }
      due = Math.max(due, this.lastDue);
      this.lastDue = due;
      this.queue.push({ slice, due });
      this.queued += slice.length;
    }
    if (this.queued > QUEUE_BYTES) this.src.pause();
    this.flush();
  }

  end() {
    this.ended = true;
    this.flush();
  }

  flush() {
    if (this.timer || this.drainWait || this.dst.destroyed) return;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const wait = head.due - performance.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.flush();
        }, wait);
        return;
      }
      this.queue.shift();
      this.queued -= head.slice.length;
      if (this.queued <= QUEUE_BYTES / 2) this.src.resume();
      if (!this.dst.write(head.slice)) {
        this.drainWait = true;
        return;
      }
    }
    if (this.ended) this.dst.end();
  }
}

const server = createServer((client) => {
  const target = createConnection({ host: '127.0.0.1', port: targetPort });
  client.setNoDelay(true);
  target.setNoDelay(true);
  const up = new Lane(client, target, 'up');
  const down = new Lane(target, client, 'down');
  client.on('data', (b) => up.push(b));
  target.on('data', (b) => down.push(b));
  client.on('end', () => up.end());
  target.on('end', () => down.end());
  const kill = () => {
    client.destroy();
    target.destroy();
  };
  client.on('error', kill);
  target.on('error', kill);
  client.on('close', () => setTimeout(kill, 1000 + rttMs));
  target.on('close', () => setTimeout(kill, 1000 + rttMs));
});

server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));

process.on('message', (msg) => {
  if (msg.cmd === 'shape') shaped = msg.on;
  const reply = { id: msg.id };
  if (msg.cmd === 'stats') {
    Object.assign(reply, counts);
    if (msg.reset) counts.up = counts.down = 0;
  }
  process.send(reply);
});
process.on('disconnect', () => process.exit(0));
