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
#   PROTOCOLS ("mlops v2") mlops: POST /model/score; v2: the same rows as JSON tensors (one
#                        1-D tensor per input) to POST /v2/models/{id}/infer, the Open
#                        Inference Protocol (shim-load load --protocol v2)
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
#   AUTH (off)           the shim's endpoint security: off; hash (SCORING_PASSPHRASE_HASH,
#                        a PBKDF2-SHA256 hash of 600 000 rounds made by hash-passphrase;
#                        the client sends the passphrase); oidc (OIDC with the test
#                        issuer's keys in OIDC_JWKS_FILE; the client sends an RS256 token);
#                        compare: 1-row runs with off, hash and oidc in turn, ROUNDS times
#                        each (default 3), then the median req/s of each and its ratio
#                        to off. Metrics are recorded in every mode; with AUTH set the
#                        shim also serves them on METRICS_PORT, scraped once per run.
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
AUTH=${AUTH:-off}
ROUNDS=${ROUNDS:-3}
passphrase="bench passphrase $(date +%s%N)"
pid=
trap '[ -n "$pid" ] && { kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; }' EXIT

# start_shim MODE: starts the shim with the endpoint security MODE (off, hash, oidc); sets
# url, pid, bearer (what the client sends) and metrics_url.
start_shim() {
  local mode=$1 env_auth=()
  bearer=
  case "$mode" in
    off) ;;
    hash)
      env_auth=(SCORING_PASSPHRASE_HASH="$(printf '%s' "$passphrase" | "$SHIM" hash-passphrase)")
      bearer=$passphrase ;;
    oidc)
      "$REL/shim-load" test-jwks >"$BENCH_DIR/jwks.json"
      env_auth=(OIDC_ISSUER=https://idp.test.invalid/realms/scoring OIDC_AUDIENCE=model-scoring
                OIDC_JWKS_FILE="$BENCH_DIR/jwks.json")
      bearer=$("$REL/shim-load" test-token --ttl 7200) ;;
    *) echo "AUTH is off, hash, oidc or compare, not $mode" >&2; exit 2 ;;
  esac
  [ "$AUTH" = off ] || env_auth+=(METRICS_PORT=0)
  env "${env_log[@]}" "${env_auth[@]}" MODEL_PATH="$model" HOST=127.0.0.1 PORT=0 "$SHIM" 2>"$log" &
  pid=$!
  addr=
  for _ in $(seq 300); do
    addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$log" | head -1)
    [ -n "$addr" ] && grep -q ' ready' "$log" && break
    kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "the shim did not start; log: $log" >&2; exit 1; }
  url="http://$addr"
  metrics_url=$(sed -n 's/.*metrics on \([0-9.:]*\/metrics\).*/http:\/\/\1/p' "$log" | head -1)
}

stop_shim() {
  kill -0 $pid || { echo "the shim died during the run; log: $log" >&2; exit 1; }
  if [ -n "$metrics_url" ]; then
    scraped=$(curl -sf "$metrics_url" | grep -c '^runtime_shim_' || true)
    echo "  /metrics scraped: $scraped sample lines; $(curl -sf "$metrics_url" | grep -E '^runtime_shim_requests_total\{route="/model/score",status="200"\}' || echo 'no /model/score count')"
  fi
  kill -TERM $pid; wait $pid || true; pid=
}

# load_run ROWS HEADER [PROTOCOL]: one shim-load run against the running shim.
load_run() {
  local auth=() proto=${3:-mlops} json="$BENCH_DIR/load-$1.json"
  [ -z "$bearer" ] || auth=(--bearer "$bearer")
  [ "$proto" = mlops ] || json="$BENCH_DIR/load-$proto-$1.json"
  "$REL/shim-load" load --url "$url" --rows "$1" --csv "$CSV" --connections "$CONNECTIONS" \
    --duration "$DURATION" --warmup "$WARMUP" --threads "$CLIENT_THREADS" $2 \
    --protocol "$proto" --json "$json" "${auth[@]}"
}

if [ "$AUTH" = compare ]; then
  echo "runtime-shim ($SHIM_TARGET release build, native H2O-3 GBM binomial), 1-row requests, endpoint security off / hashed passphrase / OIDC, $ROUNDS rounds, access log $ACCESS_LOG, metrics on"
  echo "machine: $(nproc) CPUs; before: $(uptime | sed 's/.*load average/load average/')"
  echo "shim-load: $CONNECTIONS connections, $DURATION after a $WARMUP warm-up, $CLIENT_THREADS client thread(s)"
  declare -A rps
  for round in $(seq "$ROUNDS"); do
    for mode in off hash oidc; do
      start_shim "$mode"
      line=$(load_run 1 "")
      echo "round $round $mode: $line (load average $(cut -d' ' -f1 /proc/loadavg))"
      rps[$mode]+="$(sed -n 's/.*"requests_per_second": *\([0-9.e+-]*\).*/\1/p' "$BENCH_DIR/load-1.json") "
      stop_shim
    done
  done
  echo "after: $(uptime | sed 's/.*load average/load average/')"
  median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  off=$(echo "${rps[off]}" | median)
  for mode in off hash oidc; do
    m=$(echo "${rps[$mode]}" | median)
    printf '%-5s median %8.0f req/s  (%s)  %6.1f%% of off\n' "$mode" "$m" "${rps[$mode]% }" "$(awk -v m="$m" -v o="$off" 'BEGIN {print 100 * m / o}')"
  done
  exit 0
fi

start_shim "$AUTH"
echo "runtime-shim ($SHIM_TARGET release build, native H2O-3 GBM binomial) on $url, pid $pid, access log $ACCESS_LOG, endpoint security $AUTH"
echo "machine: $(nproc) CPUs; before: $(uptime | sed 's/.*load average/load average/')"
echo "shim-load: $CONNECTIONS connections, $DURATION after a $WARMUP warm-up, $CLIENT_THREADS client thread(s)"
PROTOCOLS=${PROTOCOLS:-mlops v2}
for proto in $PROTOCOLS; do
  case "$proto" in
    mlops) echo "--- MLOps API: POST /model/score" ;;
    v2) echo "--- Open Inference Protocol v2: POST /v2/models/{id}/infer (JSON tensors)" ;;
    *) echo "PROTOCOLS holds mlops and/or v2, not $proto" >&2; exit 2 ;;
  esac
  header=--header
  for rows in $ROWS; do
    load_run "$rows" "$header" "$proto"
    header=
  done
done
echo "after: $(uptime | sed 's/.*load average/load average/')"

if [ "$WRK" != 0 ] && command -v wrk >/dev/null; then
  for rows in $ROWS; do
    lua="$BENCH_DIR/load-$rows.lua"
    {
      echo 'wrk.method = "POST"'
      echo 'wrk.headers["Content-Type"] = "application/json"'
      [ -z "$bearer" ] || echo "wrk.headers[\"Authorization\"] = [==[Bearer $bearer]==]"
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
stop_shim
