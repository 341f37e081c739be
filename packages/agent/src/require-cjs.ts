import { createRequire } from 'node:module';

/**
 * Loads this package's CommonJS dependencies (ws, better-sqlite3, ignore). Imported as ES modules
 * instead, Node first scans each one's source for its export names: about 80 ms of every agent's
 * start, and more again to compile that scanner while the agent works.
 */
export const requireCjs = createRequire(import.meta.url);
