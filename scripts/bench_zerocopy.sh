#!/usr/bin/env bash
# GET MiB/s with [storage.zerocopy] off and on, same data dir, same run, servers alternating:
#   scripts/bench_zerocopy.sh [SECONDS]      (1 MiB and 64 MiB objects, c=1 and c=16, --no-fsync)
# Uses ../shared/bench/s3bench.py; prints one line per cell: size conc setting MiB/s.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-3}
PY=.venv/bin/python
BENCH=${S3BENCH:-../shared/bench/s3bench.py}
AK=benchaccesskey SK=bench-secret-key-0123456789
DATA=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT
PID=
serve() {  # $1: zerocopy true|false
  PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  $PY -m rs3gw serve --data-dir "$DATA" --address 127.0.0.1:$PORT --access-key $AK --secret-key $SK \
    --no-fsync --log-level warning --zerocopy "$1" --zerocopy-min-size 65536 &
  PID=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/ready >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
stop() { kill $PID; wait $PID 2>/dev/null || true; }
prepared=""
for size in 1MiB 64MiB; do
  objs=64; [ $size = 64MiB ] && objs=4
  for c in 1 16; do
    for zc in false true; do
      serve $zc
      skip=--skip-prepare; [[ " $prepared " == *" $size "* ]] || { skip=""; prepared="$prepared $size"; }
      out=$($PY "$BENCH" --endpoint http://127.0.0.1:$PORT --access-key $AK --secret-key $SK --bucket bench \
        --op get --size $size --objects $objs -c $c --duration "$SECS" --warmup 1 --runs 1 $skip --json \
        --server-pid $PID)
      echo "$size c=$c zerocopy=$zc $(echo "$out" | $PY -c 'import json,sys; m=json.load(sys.stdin)["median"]["get"]; print(" ".join(f"{k}={m[k]}" for k in m if k in ("mib_s","p50_ms","errors") or "cpu" in k))')"
      stop
    done
  done
done
