import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { test as clusterTest } from './cluster.js';

/*
 * A real headless Chromium for tests of the status page: the system's browser (Debian's
 * `chromium`, which .ci/run installs; MIMIC_CHROMIUM names another), driven by playwright-core,
 * which downloads no browser of its own. `CHROMIUM` is null when there is none, for a test file
 * to skip itself. The `browser` fixture launches one per test and closes it afterwards, whatever
 * the outcome, printing what each open page showed when the test failed. Each page opened
 * with `openPage` records every URL it requests.
 */

const NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findChromium(): string | null {
  const given = process.env.MIMIC_CHROMIUM;
  if (given) return executable(given) ? given : null;
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const name of NAMES)
    for (const dir of [...dirs, '/usr/bin']) if (executable(join(dir, name))) return join(dir, name);
  return null;
}

/** The browser binary the page tests use, or null when this machine has none. */
export const CHROMIUM: string | null = findChromium();

/** Launches the system Chromium headless (without its sandbox when running as root, as CI does). */
export async function launchChromium(): Promise<Browser> {
  if (!CHROMIUM) throw new Error('no chromium binary found: install chromium or set MIMIC_CHROMIUM');
  const args = ['--disable-dev-shm-usage', '--disable-gpu'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/** A page with every URL it asked for (documents, scripts, fetches) and every script error. */
export interface RecordedPage {
  page: Page;
  requests: string[];
  errors: string[];
}

/** Opens `url` in a new context of `browser` at `viewport` (a desktop size by default). */
export async function openPage(
  browser: Browser,
  url: string,
  viewport: { width: number; height: number } = { width: 1280, height: 900 },
): Promise<RecordedPage> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(url);
  return { page, requests, errors };
}

/** The cluster fixture and a headless Chromium, closed after the test. */
export const test = clusterTest.extend<{ browser: Browser }>({
  browser: async ({ task }, use) => {
    const browser = await launchChromium();
    try {
      await use(browser);
      // What each page showed when the test failed, as text (before the browser goes).
      if (task.result?.state === 'fail')
        for (const context of browser.contexts())
          for (const page of context.pages()) {
            const text = await page
              // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, hidden parts left out
              .evaluate(() => document.body.innerText)
              .catch((e: Error) => e.message);
            console.error(`--- page ${page.url()}:\n${text}`);
          }
    } finally {
      await browser.close();
    }
  },
});
