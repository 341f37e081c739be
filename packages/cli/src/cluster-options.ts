/*
 * The flags of automatic failover on etcd, shared by `mimic primary` and `mimic mirror`:
 * without --etcd, a node works as it always did.
 */
import { readFile } from 'node:fs/promises';
import type { ClusterOptions } from '@mimic/agent';
import type { Command } from 'commander';
import { CliError } from './fail.js';

export interface ClusterFlags {
  etcd?: string;
  cluster?: string;
  etcdTtl: string;
  etcdCa?: string;
  etcdUser?: string;
  etcdPasswordFile?: string;
  priority: string;
  nofailover?: boolean;
  maxLag: string;
}

export function clusterFlags(cmd: Command): Command {
  return cmd
    .option('--etcd <urls>', 'etcd endpoints, comma-separated http(s):// URLs: fail over automatically')
    .option('--cluster <name>', 'the cluster name: keys under /mimic/<name>/ in etcd (required with --etcd)')
    .option(
      '--etcd-ttl <seconds>',
      'lease of this node in etcd; a dead primary is replaced after about this long',
      '10',
    )
    .option('--etcd-ca <file>', 'CA (PEM) to trust for https:// etcd endpoints')
    .option('--etcd-user <name>', 'etcd user (with --etcd-password-file)')
    .option('--etcd-password-file <file>', 'file holding the etcd password')
    .option('--priority <n>', 'preferred among equally caught-up mirrors to take over (higher wins)', '0')
    .option('--nofailover', 'never take over: follow only')
    .option('--max-lag <ops>', 'a mirror further behind the primary than this may not take over', '1000');
}

/** The cluster options of a command line, or null without --etcd. */
export async function clusterOf(o: ClusterFlags): Promise<ClusterOptions | null> {
  if (!o.etcd) {
    if (o.cluster) throw new CliError('ERR_INVALID_ARGUMENT', '--cluster needs --etcd');
    return null;
  }
  if (!o.cluster) throw new CliError('ERR_INVALID_ARGUMENT', '--etcd needs --cluster <name>');
  const endpoints = o.etcd.split(',').map((u) => u.trim());
  for (const u of endpoints)
    if (!/^https?:\/\/[^/\s]+\/?$/.test(u))
      throw new CliError(
        'ERR_INVALID_ARGUMENT',
        `--etcd ${JSON.stringify(u)}: expected an http:// or https:// URL`,
      );
  const number = (flag: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new CliError('ERR_INVALID_ARGUMENT', `${flag} ${v}: expected a whole number, at least ${min}`);
    return n;
  };
  const read = async (flag: string, file: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new CliError('ERR_INVALID_ARGUMENT', `${flag} ${file}: ${(err as Error).message}`);
    }
  };
  if ((o.etcdUser === undefined) !== (o.etcdPasswordFile === undefined))
    throw new CliError('ERR_INVALID_ARGUMENT', '--etcd-user and --etcd-password-file go together');
  return {
    endpoints,
    cluster: o.cluster,
    ttl: number('--etcd-ttl', o.etcdTtl, 2),
    priority: number('--priority', o.priority, -1_000_000),
    maxLag: number('--max-lag', o.maxLag, 0),
    nofailover: o.nofailover ?? false,
    ...(o.etcdCa ? { ca: await read('--etcd-ca', o.etcdCa) } : {}),
    ...(o.etcdUser
      ? {
          auth: {
            username: o.etcdUser,
            password: (await read('--etcd-password-file', o.etcdPasswordFile!)).toString().trim(),
          },
        }
      : {}),
  };
}
