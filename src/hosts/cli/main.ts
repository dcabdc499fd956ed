#!/usr/bin/env node
/**
 * `declaw` entry. Kept free of static imports of the core so that an old Node gets a clear message instead of a
 * module-loading stack trace (the core needs node:sqlite and Node >= 24.16).
 */
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 24 || (major === 24 && minor < 16)) {
  process.stderr.write(`declaw needs Node.js >= 24.16 (this is ${process.version}).\nnext step: install Node.js 24.16 or newer (https://nodejs.org) and run declaw with it; in a checkout of declaw, \`npm run declaw -- ...\` brings its own Node 24.\n`);
  process.exit(1);
}
const { main } = await import("./cli.ts");
process.exitCode = await main(process.argv.slice(2));
