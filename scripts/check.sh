#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: set-up, lint, types, layer contract, tests.
# Usage: scripts/check.sh [extra pytest args, e.g. --run-slow or -k name]
# The tests run twice over metadata stores: everything over SQLite, then the integration files that
# exercise the metadata store most over PostgreSQL (with --run-slow: the whole integration suite),
# and once more over data backends: those files with every server's blobs on a SeaweedFS
# (RS3GW_TEST_BACKEND=s3, tests/backend_matrix.py; with --run-slow: the whole integration suite).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
source scripts/postgres.sh
ensure_venv dev
ensure_postgres
ensure_debian_clients
# Azurite (the Azure backend's emulator) from npm into .cache/azurite; without node/npm its tests skip
.venv/bin/python tests/azurite.py >/dev/null || echo "Azurite unavailable: the azure backend tests will skip" >&2
# The JavaScript S3 clients (AWS SDK v3, minio-js) from npm into .cache/js-s3-clients; likewise
.venv/bin/python tests/js_clients.py >/dev/null || echo "JS S3 clients unavailable: their tests will skip" >&2
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
.venv/bin/mypy
.venv/bin/lint-imports
status=0
# The tests mostly wait on server subprocesses and sockets, so three processes on two cores finish in
# about half the time; each test file stays in one process (module-scoped servers start once).
# RS3GW_TEST_JOBS=0 runs them in this process, as plain pytest does.
parallel=(-n "${RS3GW_TEST_JOBS:-3}" --dist loadfile)
[ "${RS3GW_TEST_JOBS:-3}" = 0 ] && parallel=()
.venv/bin/pytest "${parallel[@]}" "$@" || status=$?
pg_files=(
  tests/integration/test_put_get.py tests/integration/test_list_objects.py
  tests/integration/test_versioning.py tests/integration/test_multipart.py
  tests/integration/test_conditional.py tests/integration/test_delete_objects.py
)
s3_files=(
  tests/integration/test_put_get.py tests/integration/test_multipart.py
  tests/integration/test_versioning.py tests/integration/test_copy_object.py
)
for arg in "$@"; do
  case "$arg" in
    --run-slow) pg_files=(tests/integration) s3_files=(tests/integration) ;;
    -*) ;;
    *) pg_files=() s3_files=() ;;  # the caller named tests: these passes are theirs to ask for
  esac
done
if [ "${#pg_files[@]}" -gt 0 ]; then
  echo "== integration tests over PostgreSQL metadata (RS3GW_TEST_METADATA=postgresql) =="
  RS3GW_TEST_METADATA=postgresql .venv/bin/pytest "${parallel[@]}" "$@" "${pg_files[@]}" || status=$?
fi
if [ "${#s3_files[@]}" -gt 0 ]; then
  echo "== integration tests over the S3 backend on SeaweedFS (RS3GW_TEST_BACKEND=s3) =="
  RS3GW_TEST_BACKEND=s3 .venv/bin/pytest "${parallel[@]}" "$@" "${s3_files[@]}" || status=$?
fi
exit "$status"
