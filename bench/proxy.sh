#!/usr/bin/env bash
# Proxy benchmark (issue 20, item 3): what the runtime shim costs in front of MLflow's own
# scoring server, measured side by side on the same model with the same load.
#
#   bench/proxy.sh [MODEL...]   default: sklearn_pipeline (sklearn) xgboost (xgboost flavour)
#                               (testdata/mlflow/<MODEL>, with <MODEL>.request.json)
#
# Skipped (exit 0, saying so) when MLFLOW_VENV is not set: it needs a venv with mlflow
# (.ci/setup-mlflow-venv.sh builds and prints one). For each model it
#   1. processes testdata/mlflow/<MODEL> with the real mlflow-processor and writes, from
#      <MODEL>.request.json, the rows as a CSV of text cells (the MLOps request's) and for
#      each request size the /invocations body the shim's mlflow_pyfunc backend sends
#      for those rows ({"dataframe_split": ...}, each cell typed by the model's input
#      schema; bench/proxy_util.py);
#   2. starts A, `mlflow models serve` alone: the shim's own command line for it
#      (`$MLFLOW_VENV/bin/mlflow models serve -m <payload> --env-manager local -h
#      127.0.0.1 -p PORT`, the venv's bin/ first on PATH, its own process group), and B,
#      target/release/runtime-shim on the processed model (backend mlflow_pyfunc,
#      MLFLOW_SERVE_COMMAND the same command; it starts its own `mlflow models serve`
#      child), access log on as deployed (written to a file truncated per run, the
#      child's lines through the shim's log as deployed);
#   3. checks that both answer the same predictions for ROWS_CHECK rows (A's
#      /invocations, B's /model/score);
#   4. warms both with WARMUP_SERVERS of load per request size;
#   5. for each request size in ROWS and ROUNDS rounds, alternating which side goes
#      first, runs `shim-load load` (the same client for both, CONNECTIONS keep-alive
#      connections, closed loop, DURATION after a WARMUP): A with `--path /invocations
#      --body <the split body>`, B with `--csv` (POST /model/score) on the same rows;
#      and the CPU time each side used per request over the run (the scheduler's exact
#      count of every thread, /proc/PID/task/*/schedstat: A's MLflow; B's shim and its
#      MLflow child), which the other tenants of a shared machine do not blur as they do
#      req/s and p99;
#   6. reads the peak RSS (VmHWM): the shim's own, and the MLflow server's process group
#      (summed over its processes) on each side;
# then prints per model and request size the medians over the rounds side by side, with
# the 1-minute load average after each run, the shim's overhead ((A - B) / A of req/s,
# (B - A) / A of p99) of those medians and, the figure the goal (under 10% for both) is
# judged on, the median over the rounds of each round's own overhead: a round runs A and
# B back to back (in alternating order), so its pair shares the load of the moment, which
# on a shared machine moves req/s by more than 10% from one round to the next.
#
# CONNECTIONS (16) suits MLflow's server: uvicorn with MLFLOW_MODELS_WORKERS worker
# processes (default 1), each scoring on a thread pool under Python's GIL (about one
# request's Python at a time per worker); 16 connections keep it saturated, and more only
# lengthen the queue (p99) at the same req/s.
#
# The DAI proxy (dai_mojo_pipeline) goes through the same proxy code (backend/proxy.rs),
# but its scorer (images/dai-mojo-runtime/dai_scorer.py on daimojo) loads a pipeline only
# with a Driverless AI licence, which this project neither has nor ships: it is not
# measured here (runtime-shim/README.md, "The proxies").
#
# Environment: ROWS ("1 100"), ROUNDS (3), CONNECTIONS (16), DURATION (5s), WARMUP (1s),
# WARMUP_SERVERS (3s), ROWS_CHECK (100), CLIENT_THREADS (1), MLFLOW_VENV (required),
# MLFLOW_MODELS_WORKERS (unset: MLflow's default, 1; both sides inherit it), BENCH_DIR
# (target/bench), BUILD (1; 0: use the release binaries already built), SHIM (the shim
# binary: target/release/runtime-shim; another build to compare before/after).
#
# Client, shim and MLflow share the machine's cores: on a 2-core machine read the figures
# with the load average beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
if [ -z "${MLFLOW_VENV:-}" ]; then
  echo "bench/proxy.sh: skipped: MLFLOW_VENV is not set (a venv with mlflow: .ci/setup-mlflow-venv.sh prints one)"
  exit 0
fi
for tool in bin/mlflow bin/uvicorn bin/python; do
  [ -x "$MLFLOW_VENV/$tool" ] || { echo "bench/proxy.sh: MLFLOW_VENV=$MLFLOW_VENV has no $tool" >&2; exit 1; }
done
MODELS=("$@")
[ $# -gt 0 ] || MODELS=(sklearn_pipeline xgboost)
CARGO=${CARGO:-cargo}
REL=${CARGO_TARGET_DIR:-target}/release
SHIM=${SHIM:-$REL/runtime-shim}
BENCH_DIR=${BENCH_DIR:-target/bench}
read -r -a SIZES <<< "${ROWS:-1 100}"
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
WARMUP_SERVERS=${WARMUP_SERVERS:-3s}
ROWS_CHECK=${ROWS_CHECK:-100}
CLIENT_THREADS=${CLIENT_THREADS:-1}

if [ "${BUILD:-1}" != 0 ]; then
  "$CARGO" build --release --locked -p runtime-shim -p shim-load -p mlflow-model
fi
mkdir -p "$BENCH_DIR"
MLFLOW=$(cd "$MLFLOW_VENV/bin" && pwd)/mlflow
SERVE_COMMAND="'$MLFLOW' models serve -m {model} --env-manager local -h {host} -p {port}"

shim_pid= mlflow_pid=
cleanup() {
  [ -n "$shim_pid" ] && { kill -TERM "$shim_pid" 2>/dev/null || true; wait "$shim_pid" 2>/dev/null || true; }
  # MLflow alone runs in its own process group (setsid): the group goes, as the shim
  # stops its child's.
  [ -n "$mlflow_pid" ] && { kill -TERM -- "-$mlflow_pid" 2>/dev/null || true; wait "$mlflow_pid" 2>/dev/null || true; }
  shim_pid= mlflow_pid=
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# run URL ROWS JSON ARGS...: one shim-load run; prints "req/s p50_us p99_us errors".
run() {
  local url=$1 rows=$2 json=$3 dur=$4
  shift 4
  "$REL/shim-load" load --url "$url" --rows "$rows" --connections "$CONNECTIONS" \
    --duration "$dur" --warmup "$WARMUP" --threads "$CLIENT_THREADS" --json "$json" "$@" >/dev/null || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency"]; print(r["requests_per_second"], l["p50_us"], l["p99_us"], r["errors"])' "$json"
}

echo "proxy benchmark: MLflow's scoring server alone (A) vs the runtime shim in front of it (B, $SHIM)"
echo "MLflow: $("$MLFLOW_VENV/bin/python" -c 'import mlflow, sys; print(mlflow.__version__, "on Python", sys.version.split()[0])'), MLFLOW_MODELS_WORKERS=${MLFLOW_MODELS_WORKERS:-unset (the default)}"
echo "machine: $(nproc) CPUs; before: $(uptime | sed 's/.*load average/load average/')"
echo "shim-load: $CONNECTIONS connections, $DURATION after a $WARMUP warm-up, $CLIENT_THREADS client thread(s), $ROUNDS alternating rounds (medians); server warm-up $WARMUP_SERVERS per request size"
summary=()
for model in "${MODELS[@]}"; do
  dir=$BENCH_DIR/proxy-$model prefix=$BENCH_DIR/proxy-$model-in
  rm -rf "$dir"
  "$REL/mlflow-processor" --source "testdata/mlflow/$model" --target "$dir" >/dev/null 2>&1 \
    || { "$REL/mlflow-processor" --source "testdata/mlflow/$model" --target "$dir" --overwrite; exit 1; }
  python3 bench/proxy_util.py inputs "$dir" "testdata/mlflow/$model.request.json" "$prefix" "${SIZES[@]}" "$ROWS_CHECK"
  payload=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["payload"])' "$dir/model.json")
  payload=$(cd "$dir/$payload" && pwd)

  mlflow_log=$BENCH_DIR/proxy-mlflow.log shim_log=$BENCH_DIR/proxy-shim.log
  rm -f "$mlflow_log" "$shim_log"
  port=$(free_port)
  PATH="$MLFLOW_VENV/bin:$PATH" setsid "$MLFLOW" models serve -m "$payload" --env-manager local \
    -h 127.0.0.1 -p "$port" >>"$mlflow_log" 2>&1 &
  mlflow_pid=$!
  mlflow_url=http://127.0.0.1:$port
  MODEL_PATH="$dir" HOST=127.0.0.1 PORT=0 MLFLOW_SERVE_COMMAND="$SERVE_COMMAND" "$SHIM" 2>>"$shim_log" &
  shim_pid=$!
  shim_url=http://$(wait_addr "$shim_log" $shim_pid)
  for _ in $(seq 1200); do
    curl -sf "$mlflow_url/ping" >/dev/null && curl -sf "$shim_url/readyz" >/dev/null && break
    kill -0 "$mlflow_pid" 2>/dev/null && kill -0 "$shim_pid" 2>/dev/null \
      || { echo "$model: a server exited; logs:" >&2; cat "$mlflow_log" "$shim_log" >&2; exit 1; }
    sleep 0.1
  done
  child=$(sed -n 's/.*starting the MLflow scoring server.*pid=\([0-9]*\).*/\1/p' "$shim_log" | head -1)
  [ -n "$child" ] || { echo "$model: no child pid in the shim's log:" >&2; cat "$shim_log" >&2; exit 1; }
  python3 bench/proxy_util.py agree "$mlflow_url" "$shim_url" "$prefix" "$ROWS_CHECK" \
    || { echo "$model: MLflow and the shim disagree" >&2; exit 1; }
  echo "=== $model: A MLflow $mlflow_url (group $mlflow_pid), B shim $shim_url (pid $shim_pid, child group $child)"

  # args_for SIDE ROWS: shim-load's request arguments of a side.
  args_for() {
    if [ "$1" = mlflow ]; then echo "--path /invocations --body $prefix-$2.json"; else echo "--csv $prefix.csv"; fi
  }
  for rows in "${SIZES[@]}"; do
    for who in mlflow shim; do
      url=$shim_url; [ "$who" = mlflow ] && url=$mlflow_url
      # shellcheck disable=SC2046
      run "$url" "$rows" "$BENCH_DIR/proxy-run.json" "$WARMUP_SERVERS" $(args_for $who "$rows") >/dev/null
    done
    : >"$shim_log"; : >"$mlflow_log"
  done
  run_seconds=$(python3 -c '
import sys
def secs(t):
    for unit, f in (("ms", 1e-3), ("s", 1), ("m", 60)):
        if t.endswith(unit):
            return float(t[: -len(unit)]) * f
    return float(t)
print(sum(map(secs, sys.argv[1:])))' "$DURATION" "$WARMUP")
  for rows in "${SIZES[@]}"; do
    declare -A rps=() p50=() p99=() la=() mcpu=() scpu=()
    for round in $(seq "$ROUNDS"); do
      order="mlflow shim"; [ $((round % 2)) = 0 ] && order="shim mlflow"
      for who in $order; do
        url=$shim_url; [ "$who" = mlflow ] && url=$mlflow_url
        ids="-$mlflow_pid 0"; [ "$who" = shim ] && ids="-$child $shim_pid"
        # shellcheck disable=SC2086
        read -r m0 s0 < <(python3 bench/proxy_util.py cpu $ids)
        # shellcheck disable=SC2046
        read -r r a b e < <(run "$url" "$rows" "$BENCH_DIR/proxy-run.json" "$DURATION" $(args_for $who "$rows"))
        # shellcheck disable=SC2086
        read -r m1 s1 < <(python3 bench/proxy_util.py cpu $ids)
        l=$(load1)
        [ "$e" = 0 ] || echo "  $who $rows rows: $e errors" >&2
        rps[$who]+="$r " p50[$who]+="$a " p99[$who]+="$b " la[$who]+="$l "
        # CPU ms per request over the warm-up and the measured time (requests: req/s x both).
        n=$(awk -v r="$r" -v t="$run_seconds" 'BEGIN {print r * t}')
        mcpu[$who]+="$(awk -v a="$m0" -v b="$m1" -v n="$n" 'BEGIN {print (b - a) * 1000 / n}') "
        scpu[$who]+="$(awk -v a="$s0" -v b="$s1" -v n="$n" 'BEGIN {print (b - a) * 1000 / n}') "
        : >"$shim_log"; : >"$mlflow_log"
      done
    done
    vals=()
    for who in mlflow shim; do
      r=$(echo "${rps[$who]}" | median) a=$(echo "${p50[$who]}" | median) b=$(echo "${p99[$who]}" | median)
      mc=$(echo "${mcpu[$who]}" | median) sc=$(echo "${scpu[$who]}" | median)
      vals+=("$r" "$a" "$b" "$mc")
      printf '  %-6s %4s rows: %8.0f req/s %9.0f rows/s  p50 %7.2f ms  p99 %7.2f ms  CPU/request: MLflow %.2f ms%s  (req/s of rounds: %s; load average %s)\n' \
        "$who" "$rows" "$r" "$(awk -v r="$r" -v n="$rows" 'BEGIN {print r * n}')" \
        "$(awk -v x="$a" 'BEGIN {print x / 1000}')" "$(awk -v x="$b" 'BEGIN {print x / 1000}')" \
        "$mc" "$([ "$who" = shim ] && printf ', shim %.3f ms' "$sc")" "${rps[$who]% }" "${la[$who]% }"
    done
    # The rounds' figures too, for the overhead of each round's adjacent pair of runs.
    summary+=("$rows $model ${vals[*]} $sc $(echo ${la[mlflow]} ${la[shim]} | tr ' ' '/') $(echo ${rps[mlflow]} | tr ' ' ,) $(echo ${rps[shim]} | tr ' ' ,) $(echo ${p99[mlflow]} | tr ' ' ,) $(echo ${p99[shim]} | tr ' ' ,)")
  done
  read -r a_hwm a_n < <(python3 bench/proxy_util.py group-hwm "$mlflow_pid")
  read -r b_hwm b_n < <(python3 bench/proxy_util.py group-hwm "$child")
  s_hwm=$(hwm_kb "$shim_pid")
  printf '  peak RSS: A MLflow %.1f MB (%s processes); B shim %.1f MB + its MLflow child %.1f MB (%s processes)\n' \
    "$(awk -v k="$a_hwm" 'BEGIN {print k / 1024}')" "$a_n" "$(awk -v k="$s_hwm" 'BEGIN {print k / 1024}')" \
    "$(awk -v k="$b_hwm" 'BEGIN {print k / 1024}')" "$b_n"
  cleanup
  rm -rf "$dir" "$prefix"* "$mlflow_log" "$shim_log" "$BENCH_DIR/proxy-run.json"
done
echo "after: $(uptime | sed 's/.*load average/load average/')"

echo
echo "| model | rows/request | MLflow req/s | shim req/s | MLflow rows/s | shim rows/s | MLflow p50 / p99 ms | shim p50 / p99 ms | req/s overhead: of the medians, median of the rounds' | p99 overhead: of the medians, median of the rounds' | CPU/request: MLflow alone / shim (+ its MLflow) ms | load average (MLflow, then shim runs) | goal (< 10%) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
met=0 missed=0
for s in "${summary[@]}"; do
  # shellcheck disable=SC2086
  set -- $s
  line=$(python3 -c '
import statistics, sys
rows, model, ar, aa, ab, ac, br, ba, bb, bc, sc, loads, ars, brs, abs_, bbs = sys.argv[1:]
rows = int(rows); ar, aa, ab, ac, br, ba, bb, bc, sc = map(float, (ar, aa, ab, ac, br, ba, bb, bc, sc))
nums = lambda t: [float(x) for x in t.split(",")]
# Each round ran A and B back to back: its pair shares the load of the moment.
pair_r = statistics.median((a - b) / a * 100 for a, b in zip(nums(ars), nums(brs)))
pair_p = statistics.median((b - a) / a * 100 for a, b in zip(nums(abs_), nums(bbs)))
over_r, over_p = (ar - br) / ar * 100, (bb - ab) / ab * 100
ok = pair_r < 10 and pair_p < 10
print(("met" if ok else "MISSED") + f" | {model} | {rows} | {ar:,.0f} | {br:,.0f} | {ar*rows:,.0f} | {br*rows:,.0f} | {aa/1000:.2f} / {ab/1000:.2f} | {ba/1000:.2f} / {bb/1000:.2f} | {over_r:+.1f}%, {pair_r:+.1f}% | {over_p:+.1f}%, {pair_p:+.1f}% | {ac:.2f} / {sc:.3f} (+ {bc:.2f}) | {loads} | " + ("met" if ok else "MISSED") + " |")' "$@")
  case "$line" in met*) met=$((met + 1)) ;; *) missed=$((missed + 1)) ;; esac
  echo "|${line#* |}"
done
echo "overhead goal (< 10% of MLflow's req/s and p99, median over the rounds' pairs): $met met, $missed missed"
