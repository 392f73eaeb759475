#!/usr/bin/env bash
# Scoring load benchmark of the runtime shim (issue 10: heavy traffic).
#
#   bench/load.sh
#
# Builds the release binaries, processes testdata/h2o3/gbm_binomial.zip, starts the release
# runtime-shim on 127.0.0.1 (native H2O-3 scoring), and runs `shim-load load` with 1-row and
# 100-row requests (rows from testdata/h2o3/gbm_binomial.input.csv) at CONNECTIONS
# keep-alive connections for DURATION after WARMUP each; prints the table (requests/s,
# p50/p90/p99/p99.9/max latency, errors) and the load average, then stops the shim.
# Goal: p99 <= 2 ms for 1 row.
#
#   CONNECTIONS (32), DURATION (10s), WARMUP (2s), ROWS ("1 100")
#   CLIENT_THREADS (1)   shim-load's threads; the shim gets WORKER_THREADS (default: one per CPU)
#   ACCESS_LOG (on)      on: the shim logs every request as deployed (stderr to a file);
#                        off: RUST_LOG=info,access=off
#   WRK (auto)           with wrk installed (apt-get install -y wrk), the same requests are
#                        also run with wrk and a Lua POST script as a cross-check; WRK=0: never
#   SHIM_TARGET (host)   musl: the shim is the images' static build
#                        (x86_64-unknown-linux-musl, mimalloc; needs the rustup target and
#                        musl-gcc); the client stays the host build
#   BENCH_DIR (target/bench)
#   BUILD (1)            0: use the release binaries already built
#
# Client and server share the machine: read the figures with the load average printed
# beside them (on a 2-core machine a load average above 2 before the run means other jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
REL=${CARGO_TARGET_DIR:-target}/release
BENCH_DIR=${BENCH_DIR:-target/bench}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROWS=${ROWS:-1 100}
CLIENT_THREADS=${CLIENT_THREADS:-1}
ACCESS_LOG=${ACCESS_LOG:-on}
WRK=${WRK:-auto}
CSV=testdata/h2o3/gbm_binomial.input.csv

SHIM_TARGET=${SHIM_TARGET:-host}
case "$SHIM_TARGET" in
  host) SHIM="$REL/runtime-shim" ;;
  musl) SHIM="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/runtime-shim" ;;
  *) echo "SHIM_TARGET is host or musl, not $SHIM_TARGET" >&2; exit 2 ;;
esac
if [ "${BUILD:-1}" != 0 ]; then
  "$CARGO" build --release --locked -p runtime-shim -p shim-load -p h2o3-mojo
  [ "$SHIM_TARGET" = host ] \
    || "$CARGO" build --release --locked --target x86_64-unknown-linux-musl -p runtime-shim
fi
mkdir -p "$BENCH_DIR"
model="$BENCH_DIR/load-gbm_binomial"
rm -rf "$model"
"$REL/h2o3-mojo-processor" --source testdata/h2o3/gbm_binomial.zip --target "$model" >/dev/null 2>&1

log="$BENCH_DIR/load-shim.log"
env_log=()
[ "$ACCESS_LOG" = on ] || env_log=(RUST_LOG=info,access=off)
env "${env_log[@]}" MODEL_PATH="$model" HOST=127.0.0.1 PORT=0 "$SHIM" 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$log" | head -1)
  [ -n "$addr" ] && grep -q ' ready' "$log" && break
  kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "the shim did not start; log: $log" >&2; exit 1; }
url="http://$addr"

echo "runtime-shim ($SHIM_TARGET release build, native H2O-3 GBM binomial) on $url, pid $pid, access log $ACCESS_LOG"
echo "machine: $(nproc) CPUs; before: $(uptime | sed 's/.*load average/load average/')"
echo "shim-load: $CONNECTIONS connections, $DURATION after a $WARMUP warm-up, $CLIENT_THREADS client thread(s)"
header=--header
for rows in $ROWS; do
  "$REL/shim-load" load --url "$url" --rows "$rows" --csv "$CSV" --connections "$CONNECTIONS" \
    --duration "$DURATION" --warmup "$WARMUP" --threads "$CLIENT_THREADS" $header \
    --json "$BENCH_DIR/load-$rows.json"
  header=
done
echo "after: $(uptime | sed 's/.*load average/load average/')"

if [ "$WRK" != 0 ] && command -v wrk >/dev/null; then
  for rows in $ROWS; do
    lua="$BENCH_DIR/load-$rows.lua"
    {
      echo 'wrk.method = "POST"'
      echo 'wrk.headers["Content-Type"] = "application/json"'
      printf 'wrk.body = [==['
      "$REL/shim-load" body --url "$url" --rows "$rows" --csv "$CSV"
      echo ']==]'
    } >"$lua"
    echo "--- wrk -t$CLIENT_THREADS -c$CONNECTIONS -d$DURATION --latency ($rows rows)"
    wrk -t"$CLIENT_THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$lua" "$url/model/score" >/dev/null
    wrk -t"$CLIENT_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$lua" "$url/model/score" |
      grep -E 'Latency|Req/Sec|50%|90%|99%|requests in|Requests/sec|Non-2xx|Socket errors'
  done
elif [ "$WRK" != 0 ]; then
  echo "(wrk not installed: no cross-check; apt-get install -y wrk)"
fi
kill -0 $pid || { echo "the shim died during the run; log: $log" >&2; exit 1; }
