#!/usr/bin/env bash
# Build the wheel from the checkout's files, install it (not editable) into a fresh venv
# without system site-packages, and from a directory outside the checkout run
# `llm-drill render`, `llm-drill toxiproxy` and the unit tests that read the package's
# data and entry points (stack file, templates, plugins) against the installed package.
# Proves the package carries its own data. The whole unit suite runs on the checkout in
# the test command; running it again here cost CI 91 s for no packaging evidence.
#
#   scripts/wheel-check.sh            # python: .venv/bin/python, else python3
#   PYTHON=/path/to/python scripts/wheel-check.sh
#
# Dependencies come from pip's cache (or PIP_FIND_LINKS) when already downloaded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/llm-drill-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
began=$SECONDS
step() { printf '== %s (%ds)\n' "$*" $((SECONDS - began)); }

step "copy the checkout's files (tracked and new, not ignored) so the build leaves no trace"
mkdir -p "$WORK/src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
   | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
   | tar --null -T - -cf -) | tar -xf - -C "$WORK/src"

step "build the wheel"
if "$PY" -c "import setuptools, sys; sys.exit(tuple(map(int, setuptools.__version__.split('.')[:2])) < (70, 1))" 2>/dev/null; then
  isolation=--no-build-isolation   # the venv's setuptools builds it: no download
else
  isolation=
fi
"$PY" -m pip wheel -q --no-deps $isolation -w "$WORK/dist" "$WORK/src"
wheel="$(ls "$WORK"/dist/llm_drill-*.whl)"
"$PY" - "$wheel" <<'PYEOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = {"harness/py.typed", "harness/defaults/stack.yaml",
          "harness/render/templates/alerts.rules.yml.j2",
          "harness/render/templates/alertmanager.yml.j2",
          "harness/render/templates/prometheus.yml.j2",
          "harness/render/templates/haproxy.cfg.j2",
          "harness/report/templates/report.html.j2",
          "harness/report/templates/runbook.md.j2",
          "harness/report/templates/catalogue.yml"}
missing = sorted(needed - names)
strays = sorted(n for n in names if n.split("/")[0] in {"tests", "drills", "compose", "runbooks"})
if missing or strays:
    sys.exit(f"wheel-check: the wheel misses {missing}, carries {strays}")
print(f"ok  {sys.argv[1].rsplit('/', 1)[-1]}: {len(names)} files, package data present")
PYEOF

step "install it (not editable) into a fresh venv without system site-packages"
VENV="$WORK/venv"
if "$PY" -c "import pip, sys; sys.exit(tuple(map(int, pip.__version__.split('.')[:2])) < (22, 3))"; then
  "$PY" -m venv --without-pip "$VENV"    # the outer pip installs into it (pip --python)
  pip_install() { "$PY" -m pip --python "$VENV/bin/python" install -q --no-compile "$@"; }
else
  "$PY" -m venv "$VENV"
  pip_install() { "$VENV/bin/python" -m pip install -q --no-compile "$@"; }
fi
# The extras the tests use (report's matplotlib, dev's pytest plugins), not the serving
# stack's (torch) and not the linters (mypy, ruff, type stubs): CI runs those elsewhere.
mapfile -t test_deps < <("$PY" - "$ROOT/pyproject.toml" <<'PYEOF'
import re, sys, tomllib
extras = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]
linters = re.compile(r"^(mypy|ruff|types-)", re.IGNORECASE)
deps = [d for group, ds in extras.items() if group != "stack" for d in ds]
print("\n".join(d for d in deps if not linters.match(d)))
PYEOF
)
pip_install "$wheel" "${test_deps[@]}"

step "from outside the checkout: render, toxiproxy"
mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"
"$VENV/bin/python" -I "$ROOT/scripts/wheel_smoke.py" "$ROOT" "$VENV"

step "from outside the checkout: the unit tests of the package's data, against it"
PACKAGING_TESTS=(test_package.py test_topology.py test_plugin.py render report vllm_plugins)
LLM_DRILL_INSTALLED_VENV="$VENV" LLM_DRILL_HOME="$WORK/home" \
  "$VENV/bin/python" -m pytest "${PACKAGING_TESTS[@]/#/$ROOT/tests/unit/}" -q \
  -p no:cacheprovider "$@"

step "wheel check passed"
