import { AgentError } from '../node/errors.js';
import type { ChangeTracker } from './change-tracker.js';
import type { ResolvedPrimaryOptions } from './primary-types.js';
import { TreeWatcher } from './tree-watcher.js';

/**
 * Starts the primary's watcher in its own thread, marking what it sees in the tracker. The scan
 * that follows runs meanwhile; once the watcher covers the whole tree a second scan catches
 * what changed before it did. A watch limit reached is one line and one report, not one per
 * path the watcher could not watch: the periodic rescans go on covering the tree.
 */
export function watchTree(
  options: Pick<ResolvedPrimaryOptions, 'root' | 'exclude' | 'log' | 'counters'>,
  stateRel: string | null,
  tracker: ChangeTracker,
  report: (err: Error) => void,
): TreeWatcher {
  let limitReported = false;
  return new TreeWatcher(
    { root: options.root, exclude: options.exclude, stateRel },
    {
      mark: (rel, forced) => {
        options.counters.watcherEvents++;
        tracker.mark(rel, forced);
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
  );
}
