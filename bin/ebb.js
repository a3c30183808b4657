#!/usr/bin/env -S node --disable-warning=ExperimentalWarning --max-semi-space-size=2
// The `ebb` command. In the repository Node 24+ runs the TypeScript sources directly (type stripping);
// installed as a package (under node_modules, where Node strips no types) it runs the compiled dist/.
// Plain JavaScript that any Node parses, so an old Node gets a sentence, not a stack trace (operator
// audit #24).
/* global process */
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`ebb needs Node ≥ 24 (found ${process.versions.node}): run via npx ebb\n`);
  process.exit(1);
}
const installed = import.meta.dirname.split(/[\\/]/).includes('node_modules');
await import(installed ? '../dist/cli/main.js' : '../src/cli/main.ts');
