#!/usr/bin/env bash
# `npm start`: install what is missing, then run the demo pool in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node_modules/.bin/node --disable-warning=ExperimentalWarning bin/ebb.js up "${@:-examples/demo.yaml}"
