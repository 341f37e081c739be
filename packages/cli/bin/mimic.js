#!/usr/bin/env node
// Many fsyncs run at once on a mirror; libuv's default of 4 threads would serialise them.
process.env.UV_THREADPOOL_SIZE ??= '16';
const argv = process.argv.slice(2);
const { fastPath } = await import('../dist/fast-path.bundle.js').catch((err) => {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  return import('../dist/fast-path.js');
});
const fast = await fastPath(argv);
if (fast !== null) {
  process.exitCode = fast;
} else {
  const { main } = await import('../dist/index.js');
  process.exitCode = await main(argv);
}
