import { execFileSync } from 'node:child_process';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { runMimic, sleep, test } from './helpers/cluster.js';

// Authentication and transport: the right token and a trusted certificate replicate; a wrong
// or missing token, or an untrusted certificate, get nothing at all.

async function tokenFile(dir: string, name: string, secret: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `${secret}\n`);
  await chmod(path, 0o600);
  return path;
}

/** Files and folders a mirror holds, not counting its state folder. */
async function contents(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== '.mimic' && n !== '.mimic-folder');
}

const haveOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('authentication', () => {
  test('a mirror with the same token replicates; a wrong or missing token gets nothing', async ({
    cluster,
  }) => {
    const keys = await cluster.tempDir('keys');
    const good = await tokenFile(keys, 'token', 'correct horse battery staple 42');
    const bad = await tokenFile(keys, 'other', 'a different secret of some length');
    const primaryDir = await cluster.tempDir('primary');
    await writeFile(join(primaryDir, 'secret.txt'), 'only for mirrors holding the token\n');
    const primary = await cluster.primary(primaryDir, { args: ['--token-file', good] });

    const okDir = await cluster.tempDir('mirror-ok');
    await cluster.mirror(okDir, primary.url, { args: ['--token-file', good] });
    await cluster.converged(primaryDir, okDir);

    const wrongDir = await cluster.tempDir('mirror-wrong');
    const wrong = await cluster.mirror(wrongDir, primary.url, {
      args: ['--token-file', bad],
      wait: 'spawned',
    });
    const noneDir = await cluster.tempDir('mirror-none');
    const none = await cluster.mirror(noneDir, primary.url, { wait: 'spawned' });
    await sleep(2500);
    expect(await contents(wrongDir)).toEqual([]);
    expect(await contents(noneDir)).toEqual([]);
    expect(wrong.events('connected')).toHaveLength(0);
    expect(none.events('connected')).toHaveLength(0);
    expect(primary.events('refused').length).toBeGreaterThan(0);
  });

  test('a primary without the token a mirror expects is not followed', async ({ cluster }) => {
    const keys = await cluster.tempDir('keys');
    const good = await tokenFile(keys, 'token', 'correct horse battery staple 42');
    const primaryDir = await cluster.tempDir('primary');
    await writeFile(join(primaryDir, 'a.txt'), 'a\n');
    const primary = await cluster.primary(primaryDir);
    const mirrorDir = await cluster.tempDir('mirror');
    const mirror = await cluster.mirror(mirrorDir, primary.url, {
      args: ['--token-file', good],
      wait: 'spawned',
    });
    await sleep(2500);
    expect(await contents(mirrorDir)).toEqual([]);
    expect(mirror.events('connected')).toHaveLength(0);
  });

  test('a listener on a non-loopback address refuses to start without a token', async ({ cluster }) => {
    const dir = await cluster.tempDir('primary');
    const r = await runMimic(['primary', dir, '--listen', '0.0.0.0:0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('[ERR_INSECURE]');
  });

  test('a token file readable by others is refused', async ({ cluster }) => {
    const keys = await cluster.tempDir('keys');
    const loose = join(keys, 'token');
    await writeFile(loose, 'correct horse battery staple 42\n');
    await chmod(loose, 0o644);
    const dir = await cluster.tempDir('primary');
    const r = await runMimic(['primary', dir, '--listen', '127.0.0.1:0', '--token-file', loose]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('[ERR_TOKEN]');
  });
});

describe.skipIf(!haveOpenssl)('TLS', () => {
  test('a mirror trusting the certificate replicates over wss; one that does not gets nothing', async ({
    cluster,
  }) => {
    const keys = await cluster.tempDir('tls');
    const cert = join(keys, 'cert.pem');
    const key = join(keys, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-days',
        '1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const primaryDir = await cluster.tempDir('primary');
    await writeFile(join(primaryDir, 'a.txt'), 'over tls\n');
    const primary = await cluster.primary(primaryDir, { args: ['--tls-cert', cert, '--tls-key', key] });
    expect(primary.url.startsWith('wss://')).toBe(true);

    const trusted = await cluster.tempDir('mirror-trusted');
    await cluster.mirror(trusted, primary.url, { args: ['--tls-ca', cert] });
    await cluster.converged(primaryDir, trusted);

    const untrusted = await cluster.tempDir('mirror-untrusted');
    const m = await cluster.mirror(untrusted, primary.url, { wait: 'spawned' });
    await sleep(2500);
    expect(await contents(untrusted)).toEqual([]);
    expect(m.events('connected')).toHaveLength(0);
  });
});
