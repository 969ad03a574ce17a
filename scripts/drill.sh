#!/usr/bin/env bash
# The main job: install what is needed, bring up the embedded stack (once, inside the
# pytest session), run the drill suite, and write the report and runbooks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/pytest drills/ "$@"
