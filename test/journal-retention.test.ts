import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Mirror, Primary } from '@mimic/agent';
import Database from 'better-sqlite3';
import { expect, test } from 'vitest';
import { makeTempDir } from './helpers/temp-dir.js';
import { waitConverged } from './helpers/tree-snapshot.js';

/*
 * The journal is bounded: rows every mirror acknowledged go, and a mirror that fell further
 * behind than the bound catches up by manifest, with nothing missing.
 */

function journalRows(stateDir: string): { rows: number; first: number | null } {
  const db = new Database(join(stateDir, 'mimic.db'), { readonly: true });
  try {
    const r = db.prepare('SELECT COUNT(*) AS n, MIN(seq) AS first FROM journal').get() as {
      n: number;
      first: number | null;
    };
    return { rows: r.n, first: r.first };
  } finally {
    db.close();
  }
}

test('a bounded journal: pruned rows, and a mirror behind the bound catches up by manifest', async () => {
  const base = await makeTempDir('mimic-journal-');
  const root = join(base, 'primary');
  const copy = join(base, 'mirror');
  await mkdir(root);
  await mkdir(copy);
  const keep = 40;
  const primary = new Primary({
    root,
    listen: { host: '127.0.0.1', port: 0 },
    journalKeep: keep,
    rescanIntervalMs: 0,
    init: true,
  });
  await primary.start();
  const url = `ws://127.0.0.1:${primary.address.port}`;
  let mirror = new Mirror({ root: copy, primaries: [url] });
  try {
    await mirror.start();
    for (let i = 0; i < 10; i++) await writeFile(join(root, `early-${i}.txt`), `early ${i}\n`);
    await primary.flush({ mirrors: 1, timeoutMs: 10_000 });

    // The mirror stops; far more changes than the bound follow.
    await mirror.close();
    for (let i = 0; i < 150; i++) await writeFile(join(root, `late-${i % 60}.txt`), `late ${i}\n`);
    await primary.flush({ mirrors: 0, timeoutMs: 10_000 });
    const before = journalRows(join(root, '.mimic'));
    primary.pruneJournal();
    const after = journalRows(join(root, '.mimic'));
    expect(before.rows).toBeGreaterThan(keep);
    expect(after.rows).toBeLessThanOrEqual(keep);
    expect(after.first).toBe(primary.status().seq - after.rows + 1);

    // Back again: its applied sequence is older than the journal reaches, so it reconciles.
    mirror = new Mirror({ root: copy, primaries: [url] });
    await mirror.start();
    await waitConverged(root, copy);
    await primary.flush({ mirrors: 1, timeoutMs: 10_000 });
    expect(mirror.status().appliedSeq).toBe(primary.status().seq);
  } finally {
    await mirror.close();
    await primary.close();
  }
});
