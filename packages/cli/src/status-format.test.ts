import { describe, expect, test } from 'vitest';
import { printStatus } from './status-format.js';

describe('mimic status, as read by a person', () => {
  test('a mirror in a cluster shows the leader, the term and every member with its lag', () => {
    const out = printStatus({
      role: 'mirror',
      root: '/srv/www',
      folderId: 'f'.repeat(32),
      epoch: { term: 3, node: 'web1' },
      following: 'ws://10.0.0.11:7070',
      connected: true,
      appliedSeq: 40,
      bytesReceived: 100,
      diverged: 0,
      notKept: [],
      cluster: {
        cluster: 'www',
        etcdReachable: true,
        leader: { node: 'web1', term: 3, url: 'ws://10.0.0.11:7070' },
        term: 3,
        members: [
          { id: 'web1', role: 'primary', seq: 42, lag: null, url: 'ws://10.0.0.11:7070', nofailover: false },
          { id: 'web2', role: 'mirror', seq: 40, lag: 2, url: 'ws://10.0.0.12:7070', nofailover: true },
        ],
      },
    });
    expect(out).toContain('cluster:   www, etcd reachable, term counter 3\n');
    expect(out).toContain('leader:    web1 at term 3 (ws://10.0.0.11:7070)\n');
    expect(out).toContain('member web1: primary, seq 42\n');
    expect(out).toContain('member web2: mirror, seq 40, 2 behind, nofailover\n');
  });

  test('etcd out of reach and no leader say so', () => {
    const out = printStatus({
      role: 'fenced',
      root: '/srv/www',
      folderId: null,
      epoch: { term: 2, node: 'web1' },
      fencedBy: { url: null, epoch: { term: 2, node: 'web1' } },
      listen: 'ws://10.0.0.11:7070',
      seq: 9,
      files: 3,
      mirrors: [],
      cluster: { cluster: 'www', etcdReachable: false, leader: null, term: 2, members: [] },
    });
    expect(out).toContain('fenced:    no longer the leader (epoch 2); sending nothing\n');
    expect(out).toContain('cluster:   www, etcd UNREACHABLE, term counter 2\n');
    expect(out).toContain('leader:    none\n');
  });
});
