// Embedding mimic in a Node program: a primary and a mirror in one process, a write that is
// confirmed durable on the mirror with flush(), then a clean shutdown. Run: node examples/embed.mjs
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mirror, Primary } from '@mimic/agent';

const base = mkdtempSync(join(tmpdir(), 'mimic-embed-'));
const root = join(base, 'primary');
const copy = join(base, 'mirror');
mkdirSync(root);
mkdirSync(copy);

const primary = new Primary({ root, listen: { host: '127.0.0.1', port: 0 }, init: true });
await primary.start();
const mirror = new Mirror({ root: copy, primaries: [`ws://127.0.0.1:${primary.address.port}`] });
await mirror.start();

writeFileSync(join(root, 'order-1234.json'), JSON.stringify({ paid: true }));
await primary.flush({ mirrors: 1, timeoutMs: 10_000 }); // durable on the mirror from here on
console.log('mirror has:', readFileSync(join(copy, 'order-1234.json'), 'utf8'));
console.log('primary:', primary.status().seq, 'mirror applied:', mirror.status().appliedSeq);

await mirror.close();
await primary.close();
rmSync(base, { recursive: true, force: true });
