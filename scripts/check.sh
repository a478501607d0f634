#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: set-up, lint, types, layer contract, tests.
# Usage: scripts/check.sh [extra pytest args, e.g. --run-slow or -k name]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv dev
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/pytest "$@"
