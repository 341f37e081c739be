import { spawn } from 'node:child_process';

/*
 * Child processes of the end-to-end tests and the chaos bench: each one is tracked until it
 * exits, so that a test worker (or bench) that dies without cleaning up leaves none running.
 * Plain JavaScript, so that bench/chaos.mjs can load it under plain node; types are in
 * children.d.mts.
 */

const live = new Set();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Tracks `child` until it exits. */
export function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** This process's environment without the switches that would make agents chatty. */
export function cleanEnv() {
  const env = { ...process.env };
  delete env.MIMIC_VERBOSE;
  return env;
}

/** Starts `node <script> <args>` (stdout ignored, stderr piped), tracked until it exits. */
export function spawnNode(script, args, env = {}) {
  return track(
    spawn(process.execPath, [script, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...cleanEnv(), ...env },
    }),
  );
}

/** Runs `node <script> <args>` to completion (SIGKILL after `timeoutMs`); never rejects on a non-zero exit. */
export function runNode(script, args, { timeoutMs, cwd }) {
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(process.execPath, [script, ...args], {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: cleanEnv(),
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
