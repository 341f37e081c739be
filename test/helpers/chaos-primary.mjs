// A primary run through the library, driven over stdin, for the chaos loop.
//
//   node chaos-primary.mjs <root> <port> [<peer-url>,...]
//
// Prints `ready <port>` once it serves. Then, one command per stdin line, one answer per line
// on stdout, in order:
//   flush <mirrors> <timeoutMs>   → `flushed <seq>` once that many mirrors durably applied
//                                   everything written before the command (seq: the journal's
//                                   last sequence when it resolved), or `flush-failed <code> <msg>`
//   status                        → `status <json>`
// The agent's JSON log goes to stderr. End of stdin or SIGTERM closes the primary and exits.
import { createInterface } from 'node:readline';
import { jsonLogger, Primary } from '../../packages/agent/dist/index.js';

const [root, port, peers] = process.argv.slice(2);
if (!root || !port) {
  process.stderr.write('usage: chaos-primary.mjs <root> <port> [<peer-url>,...]\n');
  process.exit(2);
}

const primary = new Primary({
  root,
  listen: { host: '127.0.0.1', port: Number(port) },
  peers: peers ? peers.split(',') : [],
  init: true,
  log: jsonLogger('primary'),
});
await primary.start();
process.stdout.write(`ready ${primary.address.port}\n`);

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  await primary.close().catch(() => {});
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());

// Commands run one after another, so answers come back in the order they were asked.
let chain = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  chain = chain.then(() => run(line.trim().split(/\s+/)));
});
lines.on('close', () => {
  chain = chain.then(shutdown);
});

async function run([cmd, ...args]) {
  if (cmd === 'flush') {
    try {
      await primary.flush({ mirrors: Number(args[0] ?? 1), timeoutMs: Number(args[1] ?? 10_000) });
      process.stdout.write(`flushed ${primary.status().seq}\n`);
    } catch (err) {
      process.stdout.write(`flush-failed ${err.code ?? 'ERR'} ${String(err.message).replace(/\n/g, ' ')}\n`);
    }
  } else if (cmd === 'status') {
    process.stdout.write(`status ${JSON.stringify(primary.status())}\n`);
  } else if (cmd) {
    process.stdout.write(`error unknown command ${cmd}\n`);
  }
}
