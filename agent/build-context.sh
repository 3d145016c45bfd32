#!/usr/bin/env bash
# Assemble the agent's Buildpacks build context from the repo root (a commit, not the work tree):
#
#   <ctx>/agent/        the worker package (git archive of agent/)
#   <ctx>/callcenter/   the shared contracts, the same source every other component imports
#   <ctx>/requirements.txt, <ctx>/Procfile   from agent/, where the Python buildpack looks
#
# Nothing is copied into the repository; the context is built from git for each image.
#   agent/build-context.sh [REF] [OUT_DIR]     then: pack build IMAGE --builder gcr.io/buildpacks/builder --path OUT_DIR
set -euo pipefail
ref="${1:-HEAD}"
out="${2:-$(mktemp -d)}"
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
mkdir -p "$out"
git -C "$root" archive "$ref" agent callcenter | tar -x -C "$out"
git -C "$root" show "$ref:agent/requirements.txt" > "$out/requirements.txt"
git -C "$root" show "$ref:agent/Procfile" > "$out/Procfile"
# models ship inside wheels (silero VAD, the turn model): nothing to download at build time
echo "3.11" > "$out/.python-version"
echo "$out"
