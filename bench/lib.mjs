// Shared helpers for the benchmarks; each concern lives in its own file under lib/.
export * from './lib/data.mjs';
export * from './lib/end-run.mjs';
export * from './lib/run.mjs';
export * from './lib/table.mjs';
export * from './lib/tree-compare.mjs';
export * from './lib/trees.mjs';
