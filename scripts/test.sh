#!/usr/bin/env bash
# The whole test suite, as CI runs it: type check, lint, unit tests, then end-to-end tests with real
# processes and peers. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh --peers
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== node $(node -v)"
echo "== typecheck" && tsc --noEmit && tsc --noEmit -p console
echo "== lint" && eslint . --max-warnings=0
echo "== unit tests" && node --disable-warning=ExperimentalWarning --test --test-concurrency=1 'src/**/*.test.ts'
echo "== end-to-end tests" && node --disable-warning=ExperimentalWarning --test --test-concurrency=1 'test/**/*.test.ts'
