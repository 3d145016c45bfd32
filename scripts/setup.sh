#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine with Python 3.11:
# Debian packages, the virtualenv in .venv, and the locked Python dependencies in one
# resolver run. Idempotent: a second run with nothing changed returns in seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PACKAGES=(espeak-ng sox ffmpeg redis-server chromium libsndfile1 cmake build-essential)
PYTHON="${PYTHON:-python3.11}"
VENV="$ROOT/.venv"
# llama-cpp-python has no wheel on PyPI and builds from source in ~9 minutes on 2 cores:
# the wheel is cached here and reused by every later setup on this machine. It is built
# without -march=native: a native build on Sapphire Rapids enables the AMX kernels, which
# segfault in VMs that do not grant AMX tile state (seen here on every batched prompt).
WHEEL_CACHE="${CALLCENTER_WHEEL_CACHE:-$HOME/.cache/callcenter/wheels}"
LLAMA_CPP_VERSION="0.3.36"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v "$PYTHON" >/dev/null || { echo "need $PYTHON (Python 3.11) on PATH, or set PYTHON=" >&2; exit 1; }

stamp_now="$(cat requirements/dev.lock pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$VENV/.installed" ] && [ "$(cat "$VENV/.installed")" = "$stamp_now" ]; then
  log "Python environment up to date ($VENV)"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

mkdir -p "$WHEEL_CACHE"
if ! ls "$WHEEL_CACHE"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl >/dev/null 2>&1; then
  log "building llama-cpp-python $LLAMA_CPP_VERSION from source (~9 min on 2 cores, once per machine; cached in $WHEEL_CACHE)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "${PIP[@]}" wheel -q --no-deps "llama-cpp-python==$LLAMA_CPP_VERSION" -w "$WHEEL_CACHE"
fi

# The CPU build of torch first (it lies on disk on these machines; a bare 'torch'
# requirement would pull a multi-GB CUDA build), then everything else in ONE run.
log "installing torch (CPU)"
"${PIP[@]}" install -q "torch==$(grep -E '^torch==' requirements/dev.lock | cut -d= -f3)"
log "installing locked dependencies (one resolver run)"
"${PIP[@]}" install -q --find-links "$WHEEL_CACHE" -r requirements/dev.lock
"${PIP[@]}" install -q --no-deps --no-build-isolation -e .

echo "$stamp_now" > "$VENV/.installed"
log "done: $VENV"
