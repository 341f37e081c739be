import { type Excluder, makeExcluder } from '../node/excludes.js';
import { relativeInside } from '../node/paths.js';
import type { ChangeTracker } from './change-tracker.js';
import type { ResolvedPrimaryOptions } from './primary-types.js';
import type { TreeWatcher } from './tree-watcher.js';
import { watchTree } from './watch-tree.js';

/**
 * New exclude patterns at run time (Primary.setExcludes): returns the excluder the tracker checks
 * paths against from now on, and a new watcher thread started with them. The old watcher stops
 * only once the new one covers the tree, so that no change goes unseen between the two; a scan
 * then picks up what is newly included. What is newly excluded is no longer looked at: mirrors
 * keep what they have of it, as rsync does without --delete-excluded. A watcher that fails to
 * start has said so through its handlers; the scan and the periodic rescans go on.
 */
export function rewatch(
  options: Parameters<typeof watchTree>[0] & Pick<ResolvedPrimaryOptions, 'stateDir'>,
  globs: readonly string[],
  old: TreeWatcher,
  tracker: ChangeTracker,
  report: (err: Error) => void,
): [Excluder, TreeWatcher] {
  const stateRel = relativeInside(options.root, options.stateDir);
  const next = watchTree({ ...options, exclude: globs }, stateRel, tracker, report);
  void (async () => {
    await next.ready.catch(() => {});
    await old.close();
    await tracker.scan();
  })().catch(() => {});
  return [makeExcluder(globs, stateRel), next];
}
