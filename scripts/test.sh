#!/usr/bin/env bash
# The test command: install what is needed, then run the framework's own tests,
# the integration tests on the real stack included (started once for the session).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/pytest tests/ drills/ "$@"
