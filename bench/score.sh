#!/usr/bin/env bash
# Scoring benchmark (issue 6): the runtime shim's batch command against h2o-genmodel's
# PredictCsv on the same MOJOs and the same input.
#
#   bench/score.sh [MODEL...]   default: gbm_binomial drf_multinomial glm_binomial
#                                        xgboost_binomial deeplearning_binomial
#                                        gbm_onehot_binomial (an encoded model: OneHotExplicit)
#                                        gam_binomial (every GAM spline type)
#
# For each testdata MOJO (testdata/h2o3/<MODEL>.zip) it
#   1. processes the MOJO into a model directory with h2o3-mojo-processor;
#   2. writes a deterministic ROWS-row input CSV (bench/gen_score_input.py: the model's
#      input columns, the training distributions, missing cells and unseen levels);
#   3. runs, alternating, RUNS times each (after one untimed run of each to warm the
#      page cache):
#        native    target/release/runtime-shim score --model-path DIR --input IN --output OUT
#        genmodel  java -cp $GENMODEL_JAR hex.genmodel.tools.PredictCsv --mojo MOJO
#                       --input IN --output OUT --decimal
#      each a whole process (start-up, reading, scoring, writing), timed with
#      /usr/bin/time -f "%M" (peak RSS) and bash's clock around it (wall seconds to the
#      microsecond: %e's 10 ms steps are a tenth of a native run);
#   4. checks that both outputs have every row and agree on a sample of rows (labels
#      equal, numbers within 1e-9 relative), so the two never do different work;
# then prints rows per second (ROWS / median wall seconds), the larger peak RSS of the
# runs and the ratios, against the goals (>= 10x genmodel's rows/s, <= 1/10 of its peak
# RSS), and the median CPU seconds (user + system), which other jobs on the machine
# disturb less than wall time.
#
# When target/release/examples/score_csv exists (`cargo build --release -p h2o3-scorer
# --example score_csv`; `make bench` builds it), a second table measures the same
# scorer streaming the CSV one row at a time with no request checks, to show how much
# of the batch command's time and memory (it streams too) is the scorer itself.
#
# Environment: ROWS (200000), RUNS (5), BENCH_DIR (target/bench), GENMODEL_JAR, JAVA
# (java), JAVA_OPTS (none: the JVM's defaults, as a user runs PredictCsv), SHIM and
# MOJO_PROC (the release binaries).
#
# GENMODEL_JAR: the environment variable, else /tmp/h2o-genmodel.jar, else the jar is
# extracted from a pip-installed h2o (`pip install h2o==3.46.0.11`) with
#   unzip -j -o <site-packages>/h2o/backend/bin/h2o.jar www/3/h2o-genmodel.jar -d /tmp
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=("$@")
[ $# -gt 0 ] || MODELS=(gbm_binomial drf_multinomial glm_binomial xgboost_binomial deeplearning_binomial
                        gbm_onehot_binomial gam_binomial)
ROWS=${ROWS:-200000}
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-target/bench}
JAVA=${JAVA:-java}
read -r -a JAVA_OPTS <<< "${JAVA_OPTS:-}"
SHIM=${SHIM:-target/release/runtime-shim}
MOJO_PROC=${MOJO_PROC:-target/release/h2o3-mojo-processor}
STREAM=${STREAM:-target/release/examples/score_csv}
TIME=/usr/bin/time

# find_genmodel_jar: bench/lib.sh
. bench/lib.sh

for b in "$SHIM" "$MOJO_PROC"; do
  [ -x "$b" ] || { echo "build first: cargo build --release (missing $b)" >&2; exit 1; }
done
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
command -v "$JAVA" >/dev/null || { echo "needs a Java runtime ($JAVA) for genmodel" >&2; exit 1; }
JAR=$(find_genmodel_jar)
mkdir -p "$BENCH_DIR"

# measure LOG cmd...: runs cmd with stdout discarded; prints "seconds maxrss_kib cpu".
# The wall time is bash's $EPOCHREALTIME (microseconds, no process started) around the
# command (GNU time's %e has 10 ms steps, a tenth of a native run); peak RSS and CPU from
# time.
measure() {
  local log=$1; shift
  local t0 t1
  t0=${EPOCHREALTIME/,/.}
  if ! $TIME -f "%e %M %U %S" -o "$log.time" "$@" >/dev/null 2>"$log"; then
    echo "failed: $*" >&2; tail -20 "$log" >&2; exit 1
  fi
  t1=${EPOCHREALTIME/,/.}
  tail -1 "$log.time" | awk -v t0="$t0" -v t1="$t1" '{printf "%.4f %s %.2f\n", t1 - t0, $2, $3 + $4}'
}

# row LABEL ROWS WALL_N WALL_G RSS_N RSS_G CPU_N CPU_G CHECKED: one table line.
row() {
  awk -v m="$1" -v r="$2" -v sn="$3" -v sg="$4" -v mn="$5" -v mg="$6" -v cn="$7" -v cg="$8" -v k="$9" 'BEGIN {
    speed = sg / sn; mem = mn / mg
    printf "%-22s %11.0f %11.0f %7.2fx %9.1f %9.1f %7.3f   %-4s %-4s %5d  %s/%s  %s/%s\n", m, r / sn, r / sg,
      speed, mn / 1024, mg / 1024, mem, (speed >= 10 ? "met" : "MISS"), (mem <= 0.1 ? "met" : "MISS"), k,
      sn, sg, cn, cg }'
}

header() {
  printf "%-22s %11s %11s %8s %9s %9s %7s   %-9s %5s  %s\n" model "rows/s $1" "rows/s gen" speed \
    "RSS $1" "RSS gen" "mem" "goals" agree "median wall s, cpu s ($1/gen)"
  printf "%-22s %11s %11s %8s %9s %9s %7s   %-9s %5s\n" "" "" "" "(>=10x)" "MiB" "MiB" "(<=0.1)" "speed mem" rows
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# agree NATIVE GENMODEL: same rows; a sample of rows equal (labels) or close (numbers).
agree() {
  python3 - "$1" "$2" "$ROWS" <<'EOF'
import csv, math, sys
native, genmodel, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = list(csv.reader(open(native, newline="")))
b = list(csv.reader(open(genmodel, newline="")))
if len(a) != rows + 1 or len(b) != rows + 1:
    sys.exit("row counts differ: native %d, genmodel %d, input %d" % (len(a) - 1, len(b) - 1, rows))
step = max(1, rows // 2000)
checked = 0
for i in range(1, rows + 1, step):
    x, y = a[i], b[i]
    if len(x) != len(y):
        sys.exit("row %d: %d native cells, %d genmodel cells" % (i, len(x), len(y)))
    for c, (u, v) in enumerate(zip(x, y)):
        try:
            fu, fv = float(u), float(v if v != "NA" else "nan")
        except ValueError:
            if u != v:
                sys.exit("row %d column %d: native %r, genmodel %r" % (i, c, u, v))
            continue
        same = (math.isnan(fu) and math.isnan(fv)) or fu == fv or \
            abs(fu - fv) <= 1e-9 * max(abs(fu), abs(fv))
        if not same:
            sys.exit("row %d column %d: native %r, genmodel %r" % (i, c, u, v))
    checked += 1
print(checked)
EOF
}

echo "scoring benchmark: $ROWS rows, median of $RUNS alternating runs per command"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (other jobs may be running)"
echo "genmodel: $JAR ($("$JAVA" -version 2>&1 | head -1)${JAVA_OPTS[*]:+, JAVA_OPTS=${JAVA_OPTS[*]}})"
declare -a TABLE=() STREAMED=()
for m in "${MODELS[@]}"; do
  mojo=testdata/h2o3/$m.zip
  [ -f "$mojo" ] || { echo "no MOJO $mojo" >&2; exit 1; }
  dir=$BENCH_DIR/score-model-$m
  rm -rf "$dir"
  "$MOJO_PROC" --source "$mojo" --target "$dir" >/dev/null 2>"$BENCH_DIR/score-proc.log" \
    || { cat "$BENCH_DIR/score-proc.log" >&2; exit 1; }
  in=$BENCH_DIR/score-input-$m-$ROWS.csv
  [ -f "$in" ] || python3 bench/gen_score_input.py "$mojo" "$in" --rows "$ROWS"
  out_n=$BENCH_DIR/score-out-native-$m.csv
  out_g=$BENCH_DIR/score-out-genmodel-$m.csv
  out_s=$BENCH_DIR/score-out-stream-$m.csv
  native=("$SHIM" score --model-path "$dir" --input "$in" --output "$out_n")
  stream=("$STREAM" "$dir/model.mojo" "$in" "$out_s")
  genmodel=("$JAVA" "${JAVA_OPTS[@]}" -cp "$JAR" hex.genmodel.tools.PredictCsv --mojo "$mojo"
            --input "$in" --output "$out_g" --decimal)
  measure "$BENCH_DIR/score-native.log" "${native[@]}" >/dev/null
  measure "$BENCH_DIR/score-genmodel.log" "${genmodel[@]}" >/dev/null
  checked=$(agree "$out_n" "$out_g") || { echo "$m: the outputs differ: $checked" >&2; exit 1; }
  streaming=false
  if [ -x "$STREAM" ]; then
    streaming=true
    measure "$BENCH_DIR/score-stream.log" "${stream[@]}" >/dev/null
    cmp -s "$out_s" "$out_n" || { echo "$m: score_csv and the batch command differ" >&2; exit 1; }
  fi
  declare -A W=() M=() C=()
  kinds=(native genmodel); $streaming && kinds+=(stream)
  for _ in $(seq "$RUNS"); do
    for k in "${kinds[@]}"; do
      case $k in
        native) r=$(measure "$BENCH_DIR/score-native.log" "${native[@]}") ;;
        genmodel) r=$(measure "$BENCH_DIR/score-genmodel.log" "${genmodel[@]}") ;;
        stream) r=$(measure "$BENCH_DIR/score-stream.log" "${stream[@]}") ;;
      esac
      read -r w mem cpu <<< "$r"
      W[$k]+="$w "; M[$k]+="$mem "; C[$k]+="$cpu "
    done
  done
  med() { printf "%s\n" $1 | median; }
  top() { printf "%s\n" $1 | sort -n | tail -1; }
  TABLE+=("$(row "$m" "$ROWS" "$(med "${W[native]}")" "$(med "${W[genmodel]}")" "$(top "${M[native]}")" \
    "$(top "${M[genmodel]}")" "$(med "${C[native]}")" "$(med "${C[genmodel]}")" "$checked")")
  if $streaming; then
    STREAMED+=("$(row "$m" "$ROWS" "$(med "${W[stream]}")" "$(med "${W[genmodel]}")" "$(top "${M[stream]}")" \
      "$(top "${M[genmodel]}")" "$(med "${C[stream]}")" "$(med "${C[genmodel]}")" "$checked")")
  fi
  echo "  $m: wall s native ${W[native]}| genmodel ${W[genmodel]}${W[stream]:+| stream ${W[stream]}}"
  unset W M C
done
echo
echo "runtime-shim score (the batch command) against PredictCsv:"
header nat
printf "%s\n" "${TABLE[@]}"
if [ ${#STREAMED[@]} -gt 0 ]; then
  echo
  echo "h2o3-scorer streaming one row at a time (examples/score_csv) against PredictCsv:"
  header str
  printf "%s\n" "${STREAMED[@]}"
fi
