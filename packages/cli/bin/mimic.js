#!/usr/bin/env node
// Many fsyncs run at once on a mirror; libuv's default of 4 threads would serialise them.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../dist/index.js');

process.exitCode = await main(process.argv.slice(2));
