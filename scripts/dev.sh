#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), starts the local stack with demo data and
# opens the Dagster UI on http://127.0.0.1:3000. Ctrl-C stops every process it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
exec .venv/bin/python -m devstack "$@"
