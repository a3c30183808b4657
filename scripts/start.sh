#!/usr/bin/env bash
# `npm start`: install what is missing, then run the demo pool in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# As an installed `ebb` runs: through its `#!/usr/bin/env -S node …` line (its Node flags), on the
# project's pinned Node.
PATH="$PWD/node_modules/.bin:$PATH"
exec bin/ebb.js up "${@:-examples/demo.yaml}"
