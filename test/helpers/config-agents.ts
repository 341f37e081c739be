import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, type Cluster } from './cluster.js';

/*
 * Agents started from config files: `mimic primary|mirror --config <file> [flags]`, with no
 * folder or flag of the Cluster's own, owned by the Cluster for teardown like any other.
 */

const START_TIMEOUT_MS = 20_000;

/** A TOML string value (JSON's quoting is TOML's for the paths and URLs tests use). */
export const tomlString = (s: string) => JSON.stringify(s);

/** Writes `lines` as `dir`/`name`; returns its path. */
export async function writeConfig(dir: string, name: string, lines: readonly string[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

/**
 * Starts `mimic <role> <args>` (a primary: until it listens and has scanned, its url known; a
 * mirror: until it connected, unless `wait` is 'spawned').
 */
export async function startAgent(
  c: Cluster,
  role: 'primary' | 'mirror',
  root: string,
  args: readonly string[],
  { env, wait = 'ready' }: { env?: NodeJS.ProcessEnv; wait?: 'ready' | 'spawned' } = {},
): Promise<Agent> {
  const agent = new Agent(role, root, join(root, '.mimic'), [role, ...args], { env });
  c.agents.push(agent);
  if (wait === 'spawned') return agent;
  if (role === 'primary') {
    const listening = await agent.waitForEvent('listening', START_TIMEOUT_MS);
    agent.url = String(listening.url);
    agent.port = Number(new URL(agent.url).port);
    await agent.waitForEvent('ready', START_TIMEOUT_MS);
  } else {
    await agent.waitForEvent('connected', START_TIMEOUT_MS);
  }
  return agent;
}
