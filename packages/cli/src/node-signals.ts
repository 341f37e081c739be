/*
 * A started node until it is told to stop: SIGINT or SIGTERM closes it cleanly (the agent
 * running then, after a promotion or a rejoin), SIGHUP reloads its config file (reload.ts),
 * and under systemd each step is told to the service manager (systemd.ts).
 */
import type { Mirror, Primary } from '@mimic/agent';
import { runningConfig } from './config-option.js';
import { toCliError } from './fail.js';
import type { RunningNode } from './mirror-run.js';
import { reloadConfig } from './reload.js';
import type { SystemdNotifier } from './systemd.js';

const lib = () => import('@mimic/agent');

/** How often what the node is (for systemd's STATUS=) is looked at again. */
const STATUS_EVERY_MS = 2000;

/** What the node is now, in a few words: systemd shows it in `systemctl status`. */
function describeAgent(agent: Primary | Mirror): string {
  let st: ReturnType<typeof agent.status>;
  try {
    st = agent.status();
  } catch {
    return 'between roles'; // a closed agent, before the next one (a rejoin) is up
  }
  if (st.role === 'mirror') {
    return `mirror of ${st.following ?? 'no primary yet'}${st.connected ? '' : ' (not connected)'}`;
  }
  const connected = st.mirrors.filter((m) => m.connected).length;
  const serving = `serving on ${st.listen}, ${connected} mirror${connected === 1 ? '' : 's'} connected`;
  return st.role === 'fenced' ? `fenced: a newer primary serves (was ${serving})` : `primary, ${serving}`;
}

async function roleLogger(agent: Primary | Mirror) {
  const { jsonLogger, Primary } = await lib();
  return jsonLogger(agent instanceof Primary ? 'primary' : 'mirror');
}

/** One SIGHUP: the file read again and applied to the agent running now; one line says what came of it. */
async function reload(node: RunningNode, systemd: SystemdNotifier | null): Promise<void> {
  const agent = node.agent();
  const log = await roleLogger(agent);
  const rc = runningConfig();
  if (!rc?.file) {
    log('reload-ignored', { reason: 'started without --config: nothing to reload' });
    return;
  }
  systemd?.reloading();
  try {
    await reloadConfig(rc, agent, (r) =>
      log('reloaded', { config: rc.file, applied: r.applied, needsRestart: r.needsRestart }),
    );
  } catch (err) {
    const e = toCliError(err);
    log('reload-failed', { config: rc.file, code: e.code, error: e.message.split('\n', 1)[0] });
  } finally {
    systemd?.ready(describeAgent(node.agent()));
  }
}

let earlyHangUp = false;
const noteHangUp = () => void (earlyHangUp = true);

/**
 * From the start of an agent command: a SIGHUP while the node is starting (which would end the
 * process by default) is kept, and the reload runs once the node serves.
 */
export function holdHangUps(): void {
  process.on('SIGHUP', noteHangUp);
}

/** Runs a started node until SIGINT/SIGTERM, then closes it; reloads its config on SIGHUP. */
export async function runUntilSignal(node: RunningNode): Promise<void> {
  let systemd: SystemdNotifier | null = null;
  if (process.env.NOTIFY_SOCKET) {
    const { SystemdNotifier } = await import('./systemd.js');
    systemd = SystemdNotifier.fromEnv(await roleLogger(node.agent()));
  }
  systemd?.ready(describeAgent(node.agent()));
  const statusTimer = systemd
    ? setInterval(() => systemd.status(describeAgent(node.agent())), STATUS_EVERY_MS).unref()
    : null;
  let reloads = Promise.resolve();
  let stopping = false;
  const hup = () => {
    if (!stopping) reloads = reloads.then(() => reload(node, systemd)).catch(() => {});
  };
  process.on('SIGHUP', hup);
  process.off('SIGHUP', noteHangUp);
  if (earlyHangUp) hup();
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      stopping = true;
      if (statusTimer) clearInterval(statusTimer);
      systemd?.stopping();
      void reloads.then(() => node.close()).finally(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  process.off('SIGHUP', hup);
  systemd?.close();
}
