#!/usr/bin/env bash
# Install rs3gw into ./.venv (first run only) and start it on the embedded default:
# a local data directory plus SQLite. Extra arguments go to `rs3gw serve` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
exec .venv/bin/rs3gw serve "$@"
