// Bundles the plain delta commands (dist/fast-path.js and everything it imports, @mimic/delta
// and xxhash-wasm included) into one file. Loading one file instead of some twenty ES modules
// takes about 30 ms off every `mimic signature|delta|patch` run. bin/mimic.js falls back to
// the unbundled modules when the bundle is missing.
import { buildSync } from 'esbuild';

const dist = new URL('../dist/', import.meta.url);
buildSync({
  entryPoints: [new URL('fast-path.js', dist).pathname],
  outfile: new URL('fast-path.bundle.js', dist).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
