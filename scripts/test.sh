#!/usr/bin/env bash
# The test command: install what is needed, then run the framework's own tests,
# the integration tests on the real stack included (started once for the session),
# then a second session on the container runtime (one stack of containers on the
# project's own engine): the runtime contract, the drills whose recovery is the
# engine's restart policy (a SIGKILLed and an OOM-killed node; a SIGTERMed node's drain
# is judged in the process session, the engine's part in it being `docker stop`'s
# signal), that policy switched off live as their breakages; gateway failover; the node
# partition (the container runtime's own network fault) and its breakage on the
# runtime's side (a proxy that holds requests to a dead path; the gateways' health checks
# are judged in the process session).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
ON_CONTAINERS=(
  tests/contract
  "drills/test_node_restart.py::test_node_restart[sigkill]"
  drills/test_out_of_memory.py
  drills/test_gateway_failover.py
  tests/breakage/test_node_restart.py::test_fails_when_the_supervisor_does_not_restart
  tests/breakage/test_out_of_memory.py::test_kill_fails_when_the_supervisor_does_not_restart
  drills/test_node_partition.py
  tests/breakage/test_node_partition.py::test_fails_when_the_proxy_holds_requests_to_a_dead_path
)
status=0
.venv/bin/pytest tests/ drills/ "$@" || status=$?
if [[ " $* " != *" --no-stack "* ]]; then
  .venv/bin/pytest --runtime container "${ON_CONTAINERS[@]}" "$@" || status=$?
fi
exit "$status"
