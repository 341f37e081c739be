import { type ChildProcess, spawn } from 'node:child_process';

/*
 * Child processes of the end-to-end tests: each one is tracked until it exits, so that a test
 * worker that dies without cleaning up takes none of them with it left running.
 */

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunResult extends ExitInfo {
  stdout: string;
  stderr: string;
}

/** This process's environment without the switches that would make agents chatty. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.MIMIC_VERBOSE;
  return env;
}

/** Starts `node <script> <args>` (stdout ignored, stderr piped), tracked until it exits. */
export function spawnNode(script: string, args: readonly string[]): ChildProcess {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: cleanEnv(),
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Runs `node <script> <args>` to completion (SIGKILL after `timeoutMs`); never rejects on a non-zero exit. */
export function runNode(
  script: string,
  args: readonly string[],
  { timeoutMs, cwd }: { timeoutMs: number; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: cleanEnv(),
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
