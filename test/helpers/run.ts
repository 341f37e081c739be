import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MIMIC_BIN = fileURLToPath(new URL('../../packages/cli/bin/mimic.js', import.meta.url));

export interface RunResult {
  /** Exit code; null when killed by a signal. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to completion; never rejects on a non-zero exit. */
export function run(file: string, args: readonly string[], cwd: string): Promise<RunResult> {
  const env = { ...process.env };
  delete env.MIMIC_VERBOSE;
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        if (err.signal) resolve({ code: null, stdout, stderr });
        else reject(err);
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** Runs the real `mimic` command line with this Node binary. */
export function mimic(args: readonly string[], cwd: string): Promise<RunResult> {
  return run(process.execPath, [MIMIC_BIN, ...args], cwd);
}

/** Whether `command` can be run from PATH. */
export function onPath(command: string, versionFlag = '--version'): boolean {
  const r = spawnSync(command, [versionFlag], { stdio: 'ignore' });
  return !r.error;
}
