import { AgentError } from '../node/errors.js';
import type { ChangeTracker } from './change-tracker.js';
import type { ResolvedPrimaryOptions } from './primary-types.js';
import { TreeWatcher } from './tree-watcher.js';

/**
 * Starts the primary's watcher in its own thread, marking what it sees in the tracker. The scan
 * that follows runs meanwhile; once the watcher covers the whole tree a second scan catches
 * what changed before it did. A watch limit reached is one line and one report, not one per
 * path the watcher could not watch: the periodic rescans go on covering the tree. Which watcher
 * runs (fanotify or inotify, see tree-watcher.ts) is logged as it starts; `--watcher fanotify`
 * where fanotify is not available throws (ERR_FANOTIFY).
 */
export function watchTree(
  options: Pick<ResolvedPrimaryOptions, 'root' | 'exclude' | 'log' | 'counters' | 'watcher'>,
  stateRel: string | null,
  tracker: ChangeTracker,
  report: (err: Error) => void,
): TreeWatcher {
  let limitReported = false;
  // Lost events: one rescan at a time, and one more if more were lost while it ran.
  let rescanning = false;
  let again = false;
  const rescan = (): void => {
    if (rescanning) {
      again = true;
      return;
    }
    rescanning = true;
    again = false;
    options.log('watch-overflow', { root: options.root });
    void tracker
      .scan()
      .catch(() => {})
      .finally(() => {
        rescanning = false;
        if (again) rescan();
      });
  };
  return new TreeWatcher(
    { root: options.root, exclude: options.exclude, stateRel },
    {
      mark: (rel, forced) => {
        options.counters.watcherEvents++;
        tracker.mark(rel, forced);
      },
      rescan,
      using: ({ kind, fallback, unwatched }) => {
        if (fallback !== null) {
          const message = `watcher: fanotify unavailable (${fallback}); using inotify`;
          options.log('watcher', { kind, fallback, message });
        } else options.log('watcher', { kind, ...(unwatched.length > 0 ? { unwatched } : {}) });
      },
      error: (err) => {
        if (err.code !== 'ENOSPC' && err.code !== 'EMFILE') {
          options.log('watch-error', { error: err.message });
          return;
        }
        if (limitReported) return;
        limitReported = true;
        const msg =
          'inotify watch limit reached: raise fs.inotify.max_user_watches (sysctl fs.inotify.max_user_watches=524288); periodic rescans continue';
        options.log('error', { code: 'ERR_INOTIFY_LIMIT', error: msg });
        report(new AgentError('ERR_INOTIFY_LIMIT', msg));
      },
    },
    options.watcher,
  );
}
