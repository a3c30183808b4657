#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// The `ebb` command. Node 24+ runs the TypeScript sources directly (type stripping).
import '../src/cli/main.ts';
