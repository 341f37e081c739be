import type { ChildProcess } from 'node:child_process';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunResult extends ExitInfo {
  stdout: string;
  stderr: string;
}

export function track<T extends ChildProcess>(child: T): T;
export function cleanEnv(): NodeJS.ProcessEnv;
/** `env`: more variables on top of the clean environment. */
export function spawnNode(script: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess;
export function runNode(
  script: string,
  args: readonly string[],
  options: { timeoutMs: number; cwd?: string },
): Promise<RunResult>;
