import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StatusView } from '@mimic/agent';
import type { Page } from 'playwright-core';
import { describe, expect } from 'vitest';
import { CHROMIUM, openPage, test } from './helpers/browser.js';
import { type Agent, type Cluster, type MirrorStatus, runMimic, sleep, waitFor } from './helpers/cluster.js';
import { freePorts, urlOf } from './helpers/failover-cluster.js';

/*
 * The status page at `/` of a node's --http endpoint, in a real headless Chromium against real
 * agents: it shows the role, a mirror's lag rising while that mirror is stopped (SIGSTOP) and
 * falling back to 0 once it runs again, a node that cannot answer as not answering, a fenced
 * primary as fenced, a reconcile's progress while it lasts, and fits a phone's width. Everything is read from the page's DOM (its
 * data-field / data-peer attributes), polled until it shows what is expected.
 */

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** What the page shows now, read from its DOM in one go. */
interface Shown {
  state: string;
  role: string;
  nodeId: string;
  fencedVisible: boolean;
  fencedBy: string;
  offlineVisible: boolean;
  ready: string;
  peers: Record<string, { connected: string; lagOps: number; lagSeconds: number; seq: number }>;
  errors: number;
  /** The sync shown, or null when the page shows none. */
  progress: { phase: string; files: number; filesTotal: number; percent: number } | null;
}

function shown(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const text = (name: string) => document.querySelector(`[data-field="${name}"]`)?.textContent ?? '';
    const visible = (name: string) => {
      const el = document.querySelector<HTMLElement>(`[data-field="${name}"]`);
      return !!el && !el.hidden && el.offsetParent !== null;
    };
    const files = document.querySelector<HTMLElement>('[data-field="progressFiles"]');
    const peers: Shown['peers'] = {};
    for (const row of document.querySelectorAll<HTMLElement>('[data-peer]')) {
      const value = (name: string) => row.querySelector<HTMLElement>(`[data-field="${name}"]`)?.dataset.value;
      peers[row.dataset.peer ?? ''] = {
        connected: value('connected') ?? '',
        lagOps: Number(value('lagOps')),
        lagSeconds: Number(value('lagSeconds')),
        seq: Number(value('seq')),
      };
    }
    return {
      state: document.body.dataset.state ?? '',
      role: text('role'),
      nodeId: text('nodeId'),
      fencedVisible: visible('fenced'),
      fencedBy: text('fencedBy'),
      offlineVisible: visible('offline'),
      ready: text('ready'),
      peers,
      errors: document.querySelectorAll('[data-field="errors"] li').length,
      progress: visible('progress')
        ? {
            phase: text('phase'),
            files: Number(files?.dataset.value),
            filesTotal: Number(files?.dataset.total),
            percent: Number(
              document.querySelector('[data-field="progressBar"]')?.getAttribute('aria-valuenow'),
            ),
          }
        : null,
    };
  });
}

/** Polls the page until `predicate` holds for what it shows; the timeout message says what it showed. */
async function untilShown(
  page: Page,
  cluster: Cluster,
  what: string,
  predicate: (s: Shown) => boolean,
  timeoutMs = 20_000,
): Promise<Shown> {
  let last: Shown | null = null;
  return waitFor(
    async () => {
      last = await shown(page);
      return predicate(last) && last;
    },
    timeoutMs,
    `the page to show ${what}`,
    {
      intervalMs: 100,
      details: async () => `page showed: ${JSON.stringify(last)}\n${await cluster.report()}`,
    },
  );
}

/** The URL of the node's HTTP endpoint, from its `http` log line. */
async function httpUrl(agent: Agent): Promise<string> {
  return `${String((await agent.waitForEvent('http', 20_000)).url)}/`;
}

/** Writes a new small file into `dir` every 100 ms until `stop()` is called. */
function keepWriting(dir: string): { stop: () => Promise<number> } {
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      await writeFile(join(dir, `w-${n}.txt`), `write ${n}\n`);
      n++;
      await sleep(100);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return n;
    },
  };
}

describe.skipIf(!CHROMIUM)('status page', () => {
  test('shows a mirror lag rising while it is stopped and falling back once it runs again', async ({
    cluster,
    browser,
  }) => {
    const primaryDir = await cluster.tempDir('primary');
    const mirrorDir = await cluster.tempDir('mirror');
    await writeFile(join(primaryDir, 'first.txt'), 'first\n');
    const primary = await cluster.primary(primaryDir, { args: ['--http', '127.0.0.1:0'] });
    const mirror = await cluster.mirror(mirrorDir, primary.url, { args: ['--http', '127.0.0.1:0'] });
    await cluster.converged(primaryDir, mirrorDir);
    const mirrorId = (await mirror.status<MirrorStatus>()).nodeId;
    const pageUrl = await httpUrl(primary);

    const p = await openPage(browser, pageUrl);
    const m = await openPage(browser, await httpUrl(mirror));
    // A mark on the window: a full reload would drop it.
    await p.page.evaluate(() => Object.assign(window, { notReloaded: true }));

    await untilShown(p.page, cluster, 'the primary with its mirror in step', (s) => {
      const peer = s.peers[mirrorId];
      return s.state === 'ok' && s.role === 'primary' && peer?.connected === 'true' && peer.lagOps === 0;
    });
    const mShown = await untilShown(m.page, cluster, 'the mirror following the primary', (s) => {
      const peer = Object.values(s.peers)[0];
      return s.state === 'ok' && s.role === 'mirror' && peer?.connected === 'true';
    });
    expect(mShown.nodeId).toBe(mirrorId);

    // --- the mirror stops; the primary goes on writing -------------------------------------
    mirror.pause();
    const writer = keepWriting(primaryDir);
    let wrote = 0;
    try {
      const first = await untilShown(p.page, cluster, 'the mirror falling behind', (s) => {
        const peer = s.peers[mirrorId];
        return !!peer && peer.lagOps > 0 && peer.lagSeconds > 0;
      });
      const base = first.peers[mirrorId]!;
      await untilShown(p.page, cluster, 'the lag rising', (s) => {
        const peer = s.peers[mirrorId];
        return !!peer && peer.lagOps >= base.lagOps + 3 && peer.lagSeconds >= base.lagSeconds + 1;
      });
      // The stopped mirror's own page says it is not answering rather than showing old figures.
      await untilShown(m.page, cluster, 'the stopped mirror as not answering', (s) => {
        return s.state === 'offline' && s.offlineVisible;
      });
    } finally {
      wrote = await writer.stop();
      mirror.resume();
    }
    expect(wrote).toBeGreaterThan(0);

    // --- it runs again and catches up --------------------------------------------------------
    await untilShown(p.page, cluster, 'the lag back to 0', (s) => {
      const peer = s.peers[mirrorId];
      return peer?.connected === 'true' && peer.lagOps === 0 && peer.lagSeconds === 0;
    });
    await cluster.converged(primaryDir, mirrorDir);
    await untilShown(
      m.page,
      cluster,
      'the mirror answering again',
      (s) => s.state === 'ok' && !s.offlineVisible,
    );

    // Updated in place: no reload, and nothing asked of any other origin.
    expect(await p.page.evaluate(() => (window as { notReloaded?: boolean }).notReloaded)).toBe(true);
    const origin = new URL(pageUrl).origin;
    expect(p.requests.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    expect(p.requests.filter((u) => new URL(u).pathname === '/')).toHaveLength(1);
    expect([...p.errors, ...m.errors]).toEqual([]);

    const shots = await cluster.tempDir('screens');
    const png = join(shots, 'primary.png');
    await p.page.screenshot({ path: png, fullPage: true });
    const data = await readFile(png);
    expect(data.length).toBeGreaterThan(PNG_SIGNATURE.length);
    expect(data.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)).toBe(true);
  });

  test('shows a fenced primary as fenced, with who fenced it', async ({ cluster, browser }) => {
    const aDir = await cluster.tempDir('a');
    const bDir = await cluster.tempDir('b');
    // A must know B's address up front (--peers) to learn B's newer epoch.
    const [bPort] = (await freePorts(1)) as [number];
    const bUrl = urlOf(bPort);
    await writeFile(join(aDir, 'one.txt'), 'one\n');
    const a = await cluster.primary(aDir, { args: ['--http', '127.0.0.1:0', '--peers', bUrl] });
    const b = await cluster.mirror(bDir, a.url, { args: ['--listen', `127.0.0.1:${bPort}`] });
    await cluster.converged(aDir, bDir);
    const bId = (await b.status<MirrorStatus>()).nodeId;

    const { page, errors } = await openPage(browser, await httpUrl(a));
    const before = await untilShown(
      page,
      cluster,
      'A as primary',
      (s) => s.state === 'ok' && s.role === 'primary',
    );
    expect(before.fencedVisible).toBe(false);

    const promoted = await runMimic(['promote', '--state', b.stateDir]);
    expect(promoted.stderr).toBe('');
    expect(promoted.code).toBe(0);

    const fenced = await untilShown(
      page,
      cluster,
      'A as fenced',
      (s) => s.role === 'fenced' && s.fencedVisible,
      15_000,
    );
    expect(fenced.fencedBy).toContain(bId);
    expect(fenced.fencedBy).toContain(bUrl);
    expect(fenced.ready).toBe('not ready');
    expect(errors).toEqual([]);
  });

  test('shows a reconcile under way with its progress, gone once it is done', async ({
    cluster,
    browser,
  }) => {
    const primaryDir = await cluster.tempDir('primary');
    const mirrorDir = await cluster.tempDir('mirror');
    const FILES = 64;
    for (let i = 0; i < FILES; i++) await writeFile(join(primaryDir, `big-${i}.bin`), randomBytes(1 << 20));
    // A file of its own makes the mirror not fresh: it reconciles by manifest, file by file.
    await writeFile(join(mirrorDir, 'own.txt'), 'only here\n');
    const primary = await cluster.primary(primaryDir);
    const mirror = await cluster.mirror(mirrorDir, primary.url, {
      wait: 'spawned',
      args: ['--http', '127.0.0.1:0'],
    });
    const pageUrl = await httpUrl(mirror);
    // The primary is frozen as soon as the mirror reports the reconcile, so that it lasts long
    // enough for the page (which asks once a second) to show it.
    await waitFor(
      async () => {
        const view = (await (await fetch(`${pageUrl}api/status`)).json()) as StatusView;
        return view.progress !== null && view.progress.files < view.progress.filesTotal;
      },
      20_000,
      'the mirror to report a reconcile under way',
      { intervalMs: 5, details: () => cluster.report() },
    );
    primary.pause();
    const { page, errors } = await openPage(browser, pageUrl);
    try {
      const shown = await untilShown(page, cluster, 'the reconcile', (s) => s.progress?.filesTotal === FILES);
      expect(shown.progress).toMatchObject({ phase: 'reconcile' });
      expect(shown.progress!.files).toBeLessThan(FILES);
      expect(shown.progress!.percent).toBeGreaterThanOrEqual(0);
      expect(shown.progress!.percent).toBeLessThan(100);
    } finally {
      primary.resume();
    }
    await cluster.converged(primaryDir, mirrorDir);
    await untilShown(page, cluster, 'no reconcile any more', (s) => s.progress === null);
    expect(errors).toEqual([]);
  });

  test('fits a phone screen without scrolling sideways', async ({ cluster, browser }) => {
    const pair = await cluster.pair({ args: ['--http', '127.0.0.1:0'] });
    const mirrorId = (await pair.mirror.status<MirrorStatus>()).nodeId;
    const { page } = await openPage(browser, await httpUrl(pair.primary), { width: 390, height: 844 });
    await untilShown(page, cluster, 'the mirror', (s) => s.state === 'ok' && s.peers[mirrorId] !== undefined);
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      viewport: document.querySelector('meta[name="viewport"]')?.getAttribute('content') ?? '',
      rowDisplay: getComputedStyle(document.querySelector('[data-peer]')!).display,
    }));
    expect(layout.viewport).toContain('width=device-width');
    expect(layout.scrollWidth).toBeLessThanOrEqual(layout.innerWidth);
    // On a narrow screen each peer is a card, not a table row.
    expect(layout.rowDisplay).toBe('block');
  });
});
