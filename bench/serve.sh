#!/usr/bin/env bash
# Serving benchmark (issue 20): the runtime shim's REST path against H2O's own runtime,
# h2o-genmodel behind a JIT-warmed Java HTTP server, on the same MOJO and the same load.
#
#   bench/serve.sh [MODEL...]   default: gbm_binomial drf_multinomial glm_binomial
#                                        xgboost_binomial gbm_onehot_binomial (encoded)
#
# For each testdata MOJO (testdata/h2o3/<MODEL>.zip) it
#   1. processes the MOJO with h2o3-mojo-processor and starts target/release/runtime-shim
#      on it (127.0.0.1, access log on as deployed, written to a file truncated per run);
#   2. starts bench/java/GenmodelServer.java (compiled with javac against h2o-genmodel.jar,
#      found by bench/lib.sh's find_genmodel_jar) on the MOJO itself: the JDK's built-in
#      HTTP server with -Dsun.net.httpserver.nodelay=true (TCP_NODELAY) and JAVA_THREADS
#      handler threads, POST /model/score taking the same MLOps request and answering the
#      same JSON shape, every row through EasyPredictModelWrapper;
#   3. sends both the same ROWS_CHECK-row request (rows of testdata/h2o3/<MODEL>.input.csv)
#      and checks that the answers agree (same row count, labels equal, numbers within 1e-9
#      relative), so the two never do different work;
#   4. warms the JVM with JAVA_WARMUP of load at each request size (the shim gets the same);
#   5. for each request size in ROWS and ROUNDS rounds, alternating which server goes
#      first, runs `shim-load load` (the same client for both: CONNECTIONS keep-alive
#      connections, closed loop, DURATION after a WARMUP) and keeps req/s, p50 and p99;
#   6. reads each server's peak RSS (VmHWM of /proc/<pid>/status) when it is stopped;
# then prints per model and request size the medians over the rounds side by side, the
# 1-minute load average during each, and the goals: >= 3x Java's rows/s at 100 and 1000
# rows, >= 2x its req/s at 1 row, p99 at or below Java's, peak RSS <= 1/10 of Java's.
#
# Rows: with ROWS_SOURCE=cycled (the default) the requests cycle the rows of
# testdata/h2o3/<MODEL>.input.csv (30 rows), so a 1000-row request repeats each ~33 times
# and the CPUs' branch predictors learn them; with ROWS_SOURCE=distinct they are
# DISTINCT_ROWS (1000) rows generated from that file, none repeated within a request: each
# column keeps its blanks' rate and its kind (a level seen in the file, a whole number or
# a decimal with as many places, within the file's range), seeded by the model's name so
# that every run sends the same rows. Both servers get the same rows either way.
#
# Environment: ROWS ("1 100 1000"), ROUNDS (3), CONNECTIONS (32), DURATION (5s), WARMUP
# (1s), JAVA_WARMUP (5s), JAVA_THREADS (32: one per connection), JAVA (java), JAVA_OPTS
# (none), CLIENT_THREADS (1), BENCH_DIR (target/bench), BUILD (1; 0: use the release
# binaries already built), SHIM_TARGET (musl when the rustup target and musl-gcc are
# installed, else host: the shim is the static build the runtime-shim image ships, or the
# host's build, target/release/runtime-shim; the client and the processor are the host's
# either way), PGO (1, as images/build.sh: the musl shim is the profile-guided build
# bench/pgo.sh makes, target/pgo/x86_64-unknown-linux-musl/release/runtime-shim; 0: the
# plain one, target/x86_64-unknown-linux-musl/release/runtime-shim), SHIM (another shim
# binary; then SHIM_TARGET and PGO are not used), GENMODEL_JAR.
#
# CPUs: with PIN=1 (on a machine with 2 or more CPUs; default 0) the client runs on
# CLIENT_CPUS (default: CPU 0) and each server on SERVER_CPUS (default: all the others), with
# taskset, so the two servers get the same CPUs, the client never takes them, and the JVM's
# 32 handler threads do not outweigh the shim's workers in the scheduler. Both servers see
# only their CPUs (the JVM's availableProcessors, the shim's worker count follow the
# affinity; the JVM then also picks its 1-CPU garbage collector, Serial, and a smaller
# heap than the G1 it runs with 2 CPUs). PIN=0: everything shares every CPU; then read
# the figures with the load average beside them. Either way each round also reads the server's CPU time
# (utime + stime of /proc/<pid>/stat) and prints the CPU microseconds per request: what a
# request costs the server whatever the client costs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
MODELS=("$@")
[ $# -gt 0 ] || MODELS=(gbm_binomial drf_multinomial glm_binomial xgboost_binomial gbm_onehot_binomial)
CARGO=${CARGO:-cargo}
REL=${CARGO_TARGET_DIR:-target}/release
shim_given=${SHIM:-}
if [ -z "${SHIM_TARGET:-}" ]; then
  if musl_build_ready; then SHIM_TARGET=musl; else SHIM_TARGET=host; fi
fi
PGO=${PGO:-1}
case "$PGO" in 0 | 1) ;; *) echo "PGO is 1 or 0, not $PGO" >&2; exit 2 ;; esac
MUSL=x86_64-unknown-linux-musl
case "$SHIM_TARGET" in
  host) SHIM=${SHIM:-$REL/runtime-shim} PGO=0 ;;
  musl) if [ "$PGO" = 1 ]; then
      SHIM=${SHIM:-${CARGO_TARGET_DIR:-target}/pgo/$MUSL/release/runtime-shim}
    else
      SHIM=${SHIM:-${CARGO_TARGET_DIR:-target}/$MUSL/release/runtime-shim}
    fi ;;
  *) echo "SHIM_TARGET is host or musl, not $SHIM_TARGET" >&2; exit 2 ;;
esac
shim_label="$SHIM_TARGET build"
[ "$PGO" = 0 ] || shim_label="profile-guided $SHIM_TARGET build"
[ -z "$shim_given" ] || shim_label=SHIM
BENCH_DIR=${BENCH_DIR:-target/bench}
read -r -a SIZES <<< "${ROWS:-1 100 1000}"
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
JAVA_WARMUP=${JAVA_WARMUP:-5s}
JAVA_THREADS=${JAVA_THREADS:-32}
CLIENT_THREADS=${CLIENT_THREADS:-1}
JAVA=${JAVA:-java}
read -r -a JAVA_OPTS <<< "${JAVA_OPTS:-}"
ROWS_CHECK=${ROWS_CHECK:-100}
NCPU=$(nproc)
PIN=${PIN:-0}
ROWS_SOURCE=${ROWS_SOURCE:-cycled}
DISTINCT_ROWS=${DISTINCT_ROWS:-1000}
case "$ROWS_SOURCE" in cycled | distinct) ;; *) echo "ROWS_SOURCE must be cycled or distinct" >&2; exit 2 ;; esac
[ "$NCPU" -ge 2 ] || PIN=0
CLIENT_CPUS=${CLIENT_CPUS:-0}
SERVER_CPUS=${SERVER_CPUS:-1-$((NCPU - 1))}
client_pin=() server_pin=()
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 1; }
  client_pin=(taskset -c "$CLIENT_CPUS") server_pin=(taskset -c "$SERVER_CPUS")
fi

command -v "$JAVA" >/dev/null && command -v javac >/dev/null \
  || { echo "needs a JDK (java and javac) for the Java peer" >&2; exit 1; }
JAR=$(find_genmodel_jar)
if [ "${BUILD:-1}" != 0 ]; then
  "$CARGO" build --release --locked -p runtime-shim -p shim-load -p h2o3-mojo
  if [ "$SHIM_TARGET" = musl ] && [ -z "$shim_given" ]; then
    if [ "$PGO" = 1 ]; then
      PGO_TRIPLE=$MUSL PGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/pgo CARGO="$CARGO" bench/pgo.sh >/dev/null
    else
      "$CARGO" build --release --locked --target $MUSL -p runtime-shim
    fi
  fi
fi
[ -x "$SHIM" ] || { echo "no runtime shim at $SHIM (BUILD=1 builds it)" >&2; exit 1; }
mkdir -p "$BENCH_DIR/serve-java"
javac -cp "$JAR" -d "$BENCH_DIR/serve-java" bench/java/GenmodelServer.java

shim_pid= java_pid=
cleanup() {
  for p in $shim_pid $java_pid; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -f "$BENCH_DIR"/serve-*.body "$BENCH_DIR"/serve-*.log
}
trap cleanup EXIT

# cpu_ticks PID: the CPU time a process has used (user + system), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# run URL ROWS CSV JSON [PID]: one shim-load run; prints "req/s p50_us p99_us errors
# cpu_us_per_request" (the last from PID's CPU time over the run, warm-up included, and
# the requests of the warm-up and the run; 0 without PID).
run() {
  local c0=0 c1=0
  [ -z "${6:-}" ] || c0=$(cpu_ticks "$6")
  "${client_pin[@]}" "$REL/shim-load" load --url "$1" --rows "$2" --csv "$3" --connections "$CONNECTIONS" \
    --duration "$4" --warmup "$WARMUP" --threads "$CLIENT_THREADS" --json "$5" >/dev/null || true
  [ -z "${6:-}" ] || c1=$(cpu_ticks "$6")
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); l = r["latency"]
ticks, tick = int(sys.argv[2]), int(sys.argv[3])
requests = r.get("requests", 0) + r.get("warmup_requests", 0)
cpu = ticks / tick * 1e6 / requests if requests and ticks else 0
print(r["requests_per_second"], l["p50_us"], l["p99_us"], r["errors"], round(cpu, 1))' "$5" "$((c1 - c0))" "$TICK"
}

# distinct_rows CSV N SEED: N rows like CSV's (see ROWS_SOURCE above), header first.
distinct_rows() {
  python3 - "$@" <<'EOF'
import csv, random, sys, zlib
path, n, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3]
header, *rows = list(csv.reader(open(path, newline="")))
rng = random.Random(zlib.crc32(seed.encode()))
def column(values):
    present = [v for v in values if v != ""]
    blank = 1 - len(present) / max(len(values), 1)
    try:
        nums = [float(v) for v in present]
    except ValueError:
        levels = sorted(set(present))
        return lambda: "" if rng.random() < blank else rng.choice(levels)
    if not nums:
        return lambda: ""
    lo, hi = min(nums), max(nums)
    places = max((len(v.split(".")[1]) for v in present if "." in v), default=0)
    if all(x == int(x) for x in nums):
        # Whole numbers, spelled as the file spells them (`4` or `4.0`).
        tail = ".0" if places else ""
        return lambda: "" if rng.random() < blank else f"{rng.randint(int(lo), int(hi))}{tail}"
    return lambda: "" if rng.random() < blank else f"{rng.uniform(lo, hi):.{places}f}"
gens = [column(c) for c in zip(*rows)]
out = csv.writer(sys.stdout, lineterminator="\n")
out.writerow(header)
for _ in range(n):
    out.writerow([g() for g in gens])
EOF
}

echo "serving benchmark: runtime-shim ($shim_label: $SHIM) vs h2o-genmodel in the JDK's HTTP server ($JAR, $("$JAVA" -version 2>&1 | head -1), $JAVA_THREADS threads, TCP_NODELAY)"
echo "rows: $ROWS_SOURCE$([ "$ROWS_SOURCE" = distinct ] && echo " ($DISTINCT_ROWS generated per model)")"
echo "machine: $NCPU CPUs; before: $(uptime | sed 's/.*load average/load average/')"
if [ "$PIN" = 1 ]; then
  echo "pinned: client on CPU(s) $CLIENT_CPUS, each server on CPU(s) $SERVER_CPUS (PIN=0: no pinning)"
else
  echo "not pinned: client and servers share every CPU"
fi
echo "shim-load: $CONNECTIONS connections, $DURATION after a $WARMUP warm-up, $CLIENT_THREADS client thread(s), $ROUNDS alternating rounds (medians); JVM warm-up $JAVA_WARMUP per request size"
summary=()
for model in "${MODELS[@]}"; do
  zip=testdata/h2o3/$model.zip csv=testdata/h2o3/$model.input.csv dir=$BENCH_DIR/serve-$model
  if [ "$ROWS_SOURCE" = distinct ]; then
    gen=$BENCH_DIR/serve-$model.rows.csv
    distinct_rows "$csv" "$DISTINCT_ROWS" "$model" >"$gen"
    csv=$gen
  fi
  rm -rf "$dir"
  "$REL/h2o3-mojo-processor" --source "$zip" --target "$dir" >/dev/null 2>&1
  shim_log=$BENCH_DIR/serve-shim.log java_log=$BENCH_DIR/serve-java.log
  rm -f "$shim_log" "$java_log"
  MODEL_PATH="$dir" HOST=127.0.0.1 PORT=0 "${server_pin[@]}" "$SHIM" 2>>"$shim_log" &
  shim_pid=$!
  "${server_pin[@]}" "$JAVA" -Dsun.net.httpserver.nodelay=true "${JAVA_OPTS[@]}" -cp "$JAR:$BENCH_DIR/serve-java" \
    GenmodelServer "$zip" 0 "$JAVA_THREADS" >"$java_log" 2>&1 &
  java_pid=$!
  shim_url=http://$(wait_addr "$shim_log" $shim_pid)
  until curl -sf "$shim_url/readyz" >/dev/null; do sleep 0.1; done
  java_url=http://$(wait_addr "$java_log" $java_pid)

  body=$BENCH_DIR/serve-$model.body
  "$REL/shim-load" body --url "$shim_url" --rows "$ROWS_CHECK" --csv "$csv" >"$body"
  python3 - "$shim_url" "$java_url" "$body" <<'EOF' || { echo "$model: the two servers disagree" >&2; exit 1; }
import json, sys, urllib.request
def post(url):
    req = urllib.request.Request(url + "/model/score", data=open(sys.argv[3], "rb").read(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
a, b = post(sys.argv[1]), post(sys.argv[2])
sa, sb = a["score"], b["score"]
assert len(sa) == len(sb), f"row counts {len(sa)} and {len(sb)}"
for i, (ra, rb) in enumerate(zip(sa, sb)):
    assert len(ra) == len(rb), f"row {i}: {ra} vs {rb}"
    for x, y in zip(ra, rb):
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            assert x == y, f"row {i}: {ra} vs {rb}"
            continue
        assert abs(fx - fy) <= 1e-9 * max(abs(fx), abs(fy), 1e-300), f"row {i}: {ra} vs {rb}"
print(f"  answers agree on {len(sa)} rows ({len(sa[0])} cells each)")
EOF
  echo "=== $model: shim $shim_url (pid $shim_pid), Java $java_url (pid $java_pid)"
  for rows in "${SIZES[@]}"; do
    run "$java_url" "$rows" "$csv" "$JAVA_WARMUP" "$BENCH_DIR/serve-warm.json" >/dev/null
    run "$shim_url" "$rows" "$csv" "$JAVA_WARMUP" "$BENCH_DIR/serve-warm.json" >/dev/null
    : >"$shim_log"
  done
  for rows in "${SIZES[@]}"; do
    declare -A rps=() p50=() p99=() la=() cpu=()
    for round in $(seq "$ROUNDS"); do
      order="shim java"; [ $((round % 2)) = 0 ] && order="java shim"
      for who in $order; do
        url=$shim_url pid=$shim_pid; [ "$who" = java ] && url=$java_url pid=$java_pid
        read -r r a b e c < <(run "$url" "$rows" "$csv" "$DURATION" "$BENCH_DIR/serve-run.json" "$pid")
        l=$(load1)
        [ "$e" = 0 ] || echo "  $who $rows rows: $e errors" >&2
        rps[$who]+="$r " p50[$who]+="$a " p99[$who]+="$b " la[$who]+="$l " cpu[$who]+="$c "
        : >"$shim_log"
      done
    done
    vals=() cpus=()
    for who in shim java; do
      r=$(echo "${rps[$who]}" | median) a=$(echo "${p50[$who]}" | median) b=$(echo "${p99[$who]}" | median)
      c=$(echo "${cpu[$who]}" | median)
      vals+=("$r" "$a" "$b") cpus+=("$c")
      printf '  %-4s %4s rows: %9.0f req/s %11.0f rows/s  p50 %6.2f ms  p99 %6.2f ms  CPU %8.1f us/request  (req/s of rounds: %s; load average %s)\n' \
        "$who" "$rows" "$r" "$(awk -v r="$r" -v n="$rows" 'BEGIN {print r * n}')" \
        "$(awk -v x="$a" 'BEGIN {print x / 1000}')" "$(awk -v x="$b" 'BEGIN {print x / 1000}')" \
        "$c" "${rps[$who]% }" "${la[$who]% }"
    done
    summary+=("$rows $model ${vals[*]} $(echo ${la[shim]} ${la[java]} | tr ' ' '/') ${cpus[*]}")
  done
  shim_rss=$(hwm_kb $shim_pid) java_rss=$(hwm_kb $java_pid)
  printf '  peak RSS: shim %.1f MB, Java %.1f MB\n' "$(awk -v k="$shim_rss" 'BEGIN {print k / 1024}')" "$(awk -v k="$java_rss" 'BEGIN {print k / 1024}')"
  summary+=("rss $model $shim_rss $java_rss")
  kill -TERM $shim_pid $java_pid; wait $shim_pid 2>/dev/null || true; wait $java_pid 2>/dev/null || true
  shim_pid= java_pid=
  rm -rf "$dir" "$body" "$BENCH_DIR/serve-$model.rows.csv"
done
echo "after: $(uptime | sed 's/.*load average/load average/')"

echo
echo "| model | rows/request | shim req/s | Java req/s | shim rows/s | Java rows/s | ratio | shim p50 / p99 ms | Java p50 / p99 ms | server CPU us/request shim / Java (ratio) | load average (shim, then Java runs) | goal |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
met=0 missed=0
for s in "${summary[@]}"; do
  # shellcheck disable=SC2086
  set -- $s
  [ "$1" = rss ] && continue
  rows=$1 model=$2 sr=$3 sa=$4 sb=$5 jr=$6 ja=$7 jb=$8 loads=$9 sc=${10} jc=${11}
  verdict=$(python3 -c '
import sys
rows, sr, sb, jr, jb = int(sys.argv[1]), *map(float, sys.argv[2:])
need = 2.0 if rows == 1 else 3.0
ok = sr >= need * jr and sb <= jb
print(("met" if ok else "MISSED") + f" (>= {need:g}x, p99 <= Java)")' "$rows" "$sr" "$sb" "$jr" "$jb")
  case "$verdict" in met*) met=$((met + 1)) ;; *) missed=$((missed + 1)) ;; esac
  python3 -c '
import sys
rows, model, sr, sa, sb, jr, ja, jb, loads, verdict, sc, jc = sys.argv[1:]
rows = int(rows); sr, sa, sb, jr, ja, jb, sc, jc = map(float, (sr, sa, sb, jr, ja, jb, sc, jc))
cpu = f"{sc:.1f} / {jc:.1f} ({jc/sc:.2f}x)" if sc > 0 else "-"
print(f"| {model} | {rows} | {sr:,.0f} | {jr:,.0f} | {sr*rows:,.0f} | {jr*rows:,.0f} | {sr/jr:.2f}x | {sa/1000:.2f} / {sb/1000:.2f} | {ja/1000:.2f} / {jb/1000:.2f} | {cpu} | {loads} | {verdict} |")' \
    "$rows" "$model" "$sr" "$sa" "$sb" "$jr" "$ja" "$jb" "$loads" "$verdict" "$sc" "$jc"
done
echo
for s in "${summary[@]}"; do
  # shellcheck disable=SC2086
  set -- $s
  [ "$1" = rss ] || continue
  python3 -c '
import sys
m, s, j = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"peak RSS {m}: shim {s/1024:.1f} MB, Java {j/1024:.1f} MB, {s/j:.3f} of Java: " + ("met" if s * 10 <= j else "MISSED") + " (<= 1/10)")' "$2" "$3" "$4"
done
echo "throughput/p99 goals: $met met, $missed missed"
