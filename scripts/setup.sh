#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine with Python 3.11 and Go:
# Debian packages, livekit-server built from its Go module (cached), the virtualenv in .venv,
# and the locked Python dependencies in one resolver run. Idempotent: a second run with
# nothing changed returns in seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PACKAGES=(espeak-ng flite sox ffmpeg redis-server chromium libsndfile1 cmake build-essential)
PYTHON="${PYTHON:-python3.11}"
VENV="$ROOT/.venv"
# llama-cpp-python has no wheel on PyPI and builds from source in ~9 minutes on 2 cores:
# the wheel is cached here and reused by every later setup on this machine. It is built
# without -march=native: a native build on Sapphire Rapids enables the AMX kernels, which
# segfault in VMs that do not grant AMX tile state (seen here on every batched prompt).
WHEEL_CACHE="${CALLCENTER_WHEEL_CACHE:-$HOME/.cache/callcenter/wheels}"
LLAMA_CPP_VERSION="0.3.36"
# livekit-server, built from the Go module proxy by module@version (it declares go 1.26 and
# no replace directive) and cached like the llama.cpp wheel: ~5 min on 2 cores, once.
# The version matches livekit-api 1.2.2 / livekit-agents 1.8.9 (protocol 1.4x). The local stack
# and the end-to-end tests run it on loopback; .local/bin/livekit-server points at the cache.
# livekit-sip (github.com/livekit/sip) and Egress are refused by the module proxy here (403):
# docs/local-livekit.md says what stands in for them locally.
LIVEKIT_SERVER_VERSION="v1.13.5"
BIN_CACHE="${CALLCENTER_BIN_CACHE:-$HOME/.cache/callcenter/bin}"
# etcd and kube-apiserver for the rollout's tests against a real API server
# (devstack/control_plane.py), built from the pinned module in scripts/kube-build: the
# Kubernetes minor GKE runs and the etcd release it pins. Cached under a name carrying both
# versions and the module's hash, so a changed pin rebuilds. In the background like livekit-server.
KUBE_BUILD="$ROOT/scripts/kube-build"
KUBE_VERSION="$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$KUBE_BUILD/go.mod")"
ETCD_VERSION="$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$KUBE_BUILD/go.mod")"
KUBE_KEY="$(cat "$KUBE_BUILD/go.mod" "$KUBE_BUILD/go.sum" | sha256sum | cut -c1-12)"
KUBE_APISERVER_BIN="$BIN_CACHE/kube-apiserver-$KUBE_VERSION-$KUBE_KEY"
ETCD_BIN="$BIN_CACHE/etcd-$ETCD_VERSION-$KUBE_KEY"

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

# livekit-server builds in the background while pip works (one is CPU-bound, the other mostly I/O)
LIVEKIT_BIN="$BIN_CACHE/livekit-server-$LIVEKIT_SERVER_VERSION"
build_pid=""
mkdir -p "$BIN_CACHE" "$ROOT/.local/bin"
if [ ! -x "$LIVEKIT_BIN" ]; then
  command -v go >/dev/null || { echo "need Go >= 1.26 on PATH to build livekit-server" >&2; exit 1; }
  log "building livekit-server $LIVEKIT_SERVER_VERSION from its Go module (~5 min on 2 cores, once per machine; cached in $BIN_CACHE)"
  (
    tmp="$(mktemp -d)"
    GOBIN="$tmp" go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_SERVER_VERSION" >"$BIN_CACHE/livekit-server.build.log" 2>&1 \
      && mv "$tmp/server" "$LIVEKIT_BIN"
    rm -rf "$tmp"
  ) &
  build_pid=$!
fi
kube_pid=""
if [ ! -x "$KUBE_APISERVER_BIN" ] || [ ! -x "$ETCD_BIN" ]; then
  command -v go >/dev/null || { echo "need Go >= 1.26 on PATH to build kube-apiserver and etcd" >&2; exit 1; }
  log "building kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION from scripts/kube-build (~7.5 CPU-min: ~4 min on 2 idle cores, once per machine; cached in $BIN_CACHE)"
  (
    tmp="$(mktemp -d)"
    # the version stamps Kubernetes' own build sets (hack/lib/version.sh): /version answers v1.x.y
    minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
    stamp=""
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    cd "$KUBE_BUILD" \
      && go build -trimpath -ldflags="-s$stamp" -o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver go.etcd.io/etcd/server/v3 \
        >"$BIN_CACHE/kube-build.log" 2>&1 \
      && mv "$tmp/kube-apiserver" "$KUBE_APISERVER_BIN" && mv "$tmp/server" "$ETCD_BIN"
    status=$?
    rm -rf "$tmp"
    exit $status
  ) &
  kube_pid=$!
fi
finish_livekit() {
  if [ -n "$build_pid" ] && ! wait "$build_pid"; then
    echo "building livekit-server failed: $BIN_CACHE/livekit-server.build.log" >&2; exit 1
  fi
  ln -sfn "$LIVEKIT_BIN" "$ROOT/.local/bin/livekit-server"
  if [ -n "$kube_pid" ] && ! wait "$kube_pid"; then
    echo "building kube-apiserver/etcd failed: $BIN_CACHE/kube-build.log" >&2; exit 1
  fi
  ln -sfn "$KUBE_APISERVER_BIN" "$ROOT/.local/bin/kube-apiserver"
  ln -sfn "$ETCD_BIN" "$ROOT/.local/bin/etcd"
}

stamp_now="$(cat requirements/dev.lock pyproject.toml scripts/setup.sh devstack/talk/package-lock.json | sha256sum | cut -d' ' -f1)"
if [ -f "$VENV/.installed" ] && [ "$(cat "$VENV/.installed")" = "$stamp_now" ]; then
  log "Python environment up to date ($VENV)"
  finish_livekit
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

# torch comes from PyPI with the rest (the embeddings' sentence-transformers needs it): PyPI
# serves only its CUDA build, whose nvidia-* libraries (~4 GB) are pinned in the lock too and
# simply unused on a CPU machine. No second index, no second resolver run.
log "installing locked dependencies (one resolver run)"
"${PIP[@]}" install -q --find-links "$WHEEL_CACHE" -r requirements/dev.lock
"${PIP[@]}" install -q --no-deps --no-build-isolation -e .

# livekit-client for the local stack's talk-to-the-agent page (devstack/talk), from npm
if command -v npm >/dev/null; then
  log "npm ci devstack/talk (livekit-client)"
  npm ci --prefix devstack/talk --no-audit --no-fund --silent
else
  log "npm not found: the talk-to-the-agent page (devstack/talk) will say livekit-client is missing"
fi
finish_livekit
echo "$stamp_now" > "$VENV/.installed"
log "done: $VENV"
