#!/usr/bin/env node
// Runs the TypeScript CLI directly: transpile-only keeps start-up short, `npm test` type-checks separately.
require("ts-node").register({
  transpileOnly: true,
  project: require("path").join(__dirname, "..", "tsconfig.json"),
});
require("../lib/cli/main").main(process.argv.slice(2));
