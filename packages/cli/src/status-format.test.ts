import { describe, expect, test } from 'vitest';
import { printStatus, progressLine } from './status-format.js';

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

  test('each link says how it is compressed and what limits it', () => {
    const primary = printStatus({
      role: 'primary',
      root: '/srv/www',
      folderId: 'f'.repeat(32),
      epoch: { term: 1, node: 'web1' },
      listen: 'ws://10.0.0.11:7070',
      seq: 5,
      files: 3,
      bandwidth: { perMirror: 200 * 1024, total: null },
      mirrors: [
        { id: 'web2', connected: true, ackedSeq: 5, bytesSent: 10, codec: 'brotli' },
        { id: 'web3', connected: false, ackedSeq: 5, bytesSent: 0, codec: null },
      ],
    });
    expect(primary).toContain('bandwidth: at most 200 KiB/s per mirror, no limit in total\n');
    expect(primary).toContain(
      'mirror web2: connected, acked seq 5 (in sync), 10 bytes sent, compressed (brotli)\n',
    );
    expect(primary).toContain('mirror web3: disconnected, acked seq 5 (in sync), 0 bytes sent\n');
    const mirror = printStatus({
      role: 'mirror',
      root: '/srv/www',
      folderId: 'f'.repeat(32),
      epoch: { term: 1, node: 'web1' },
      following: 'ws://10.0.0.11:7070',
      connected: true,
      appliedSeq: 5,
      bytesReceived: 10,
      diverged: 0,
      codec: 'deflate',
      bandwidth: { receive: 1536 },
    });
    expect(mirror).toContain('link:      compressed (deflate), reading at most 1.5 KiB/s\n');
  });
});

describe('progress and lag', () => {
  test('a sync under way reads as rsync --info=progress2 does', () => {
    expect(
      progressLine({
        phase: 'initial',
        files: 250,
        filesTotal: 1000,
        bytes: 256 * 1024 * 1024,
        bytesTotal: 1024 * 1024 * 1024,
        rateBytesPerSec: 32 * 1024 * 1024,
        etaSeconds: 3725,
      }),
    ).toBe('initial: 250/1000 files, 256.0 MiB of 1.0 GiB (25%), 32.0 MiB/s, 1:02:05 left');
    expect(
      progressLine({
        phase: 'catch-up',
        files: 10,
        filesTotal: 40,
        bytes: 0,
        bytesTotal: 0,
        rateBytesPerSec: 0,
        etaSeconds: null,
      }),
    ).toBe('catch-up: 10/40 files, 0 B (25%), 0 B/s, ? left');
  });

  test('a mirror behind says by how much', () => {
    const out = printStatus({
      role: 'primary',
      root: '/srv',
      folderId: 'f',
      epoch: { term: 1, node: 'a' },
      listen: 'ws://127.0.0.1:1',
      seq: 50,
      files: 3,
      mirrors: [{ id: 'b', connected: true, ackedSeq: 40, bytesSent: 9, lagBytes: 2048, lagSeconds: 1.25 }],
    });
    expect(out).toContain(
      'mirror b: connected, acked seq 40 (10 behind, 2.0 KiB, oldest 1.3 s), 9 bytes sent',
    );
  });
});
