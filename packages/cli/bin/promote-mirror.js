#!/usr/bin/env node
const { main } = await import('../dist/index.js');

process.exitCode = await main(['promote', ...process.argv.slice(2)]);
