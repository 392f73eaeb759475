#!/usr/bin/env bash
# Processing benchmark (issue: speed and memory on large artifacts).
#
#   bench/run.sh [SIZE_MIB...]        default: 256 1024
#
# For each size and each format (zip, tar.gz) it times, alternating runs (RUNS, default 3):
#   processor  mlflow-processor --source A --target T
#   unzip      unzip -q A -d T && sha256sum of every file   (tar.gz: tar xzf + sha256sum)
#   python     zipfile.extractall + hashlib over every file (tar.gz: tarfile.extractall)
#   cp         cp -r of the extracted tree (the write floor)
# and prints the median seconds, the ratio to the processor and each one's peak RSS, then
# the goals: processor <= 0.5x python, <= 1.3x cp, peak RSS <= 64 MiB whatever the size.
# Sources stay in the page cache; targets are on the same filesystem (BENCH_DIR). The
# processor makes its output durable before publishing (one sync at the end); the other
# methods leave theirs in the page cache. Between runs (untimed) the output is removed and
# the filesystem synced, so no run pays for the writeback of the one before.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("$@")
[ $# -gt 0 ] || SIZES=(256 1024)
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-target/bench}
PROC=${PROC:-target/release/mlflow-processor}
MOJO_PROC=${MOJO_PROC:-target/release/h2o3-mojo-processor}
MOJO=${MOJO:-testdata/h2o3/gbm_binomial.zip}
TIME=/usr/bin/time
mkdir -p "$BENCH_DIR"
[ -x "$PROC" ] || { echo "build first: cargo build --release (missing $PROC)" >&2; exit 1; }
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }

measure() { # cmd...: prints "seconds maxrss_kib"
  local out; out=$($TIME -f "%e %M" "$@" 2>&1 >/dev/null | tail -1)
  echo "$out"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo met; else echo MISSED; fi; }

echo "load before: $(uptime | sed 's/.*load average/load average/'), $(nproc) CPUs"
declare -A PEAK=()
for mib in "${SIZES[@]}"; do
  for fmt in zip tar.gz; do
    src="$BENCH_DIR/mlflow-${mib}MiB.$fmt"
    [ -f "$src" ] || python3 bench/gen_mlflow_artifact.py "$src" $((mib << 20)) --format "$fmt"
    ref="$BENCH_DIR/ref-${mib}-${fmt}"
    if [ ! -d "$ref" ]; then
      mkdir -p "$ref"
      if [ "$fmt" = zip ]; then unzip -q "$src" -d "$ref"; else tar xzf "$src" -C "$ref"; fi
    fi
    # Warm the page cache with the source and the reference tree.
    cat "$src" >/dev/null; find "$ref" -type f -print0 | xargs -0 cat >/dev/null
    declare -A T=() R=()
    for _ in $(seq "$RUNS"); do
      for m in processor unzip python cp; do
        dst="$BENCH_DIR/out-$m"; rm -rf "$dst"; sync
        case $m in
          processor) r=$(measure "$PROC" --source "$src" --target "$dst" --log-format json) ;;
          unzip) if [ "$fmt" = zip ]; then
                   r=$(measure bash -c "unzip -q '$src' -d '$dst' && find '$dst' -type f -print0 | xargs -0 sha256sum >/dev/null")
                 else
                   r=$(measure bash -c "mkdir -p '$dst' && tar xzf '$src' -C '$dst' && find '$dst' -type f -print0 | xargs -0 sha256sum >/dev/null")
                 fi ;;
          python) r=$(measure python3 -c "
import hashlib, os, sys, zipfile, tarfile
src, dst = sys.argv[1], sys.argv[2]
if src.endswith('.zip'):
    zipfile.ZipFile(src).extractall(dst)
else:
    tarfile.open(src).extractall(dst, filter='data')
for root, _, names in os.walk(dst):
    for n in names:
        h = hashlib.sha256()
        with open(os.path.join(root, n), 'rb') as f:
            while b := f.read(1 << 20):
                h.update(b)
" "$src" "$dst") ;;
          cp) r=$(measure cp -r "$ref" "$dst") ;;
        esac
        T[$m]+="${r% *} "; R[$m]+="${r#* } "
        rm -rf "$dst"
      done
    done
    p=$(echo "${T[processor]}" | tr ' ' '\n' | median)
    echo
    echo "== ${mib} MiB $fmt ($(stat -c %s "$src") bytes), median of $RUNS runs"
    printf "%-10s %10s %14s %12s\n" method seconds "vs processor" "peak RSS MiB"
    declare -A S=()
    for m in processor unzip python cp; do
      s=$(echo "${T[$m]}" | tr ' ' '\n' | median)
      S[$m]=$s
      rss=$(echo "${R[$m]}" | tr ' ' '\n' | sort -n | tail -1)
      label=$m; [ "$m" = unzip ] && [ "$fmt" = tar.gz ] && label=tar
      printf "%-10s %10.2f %13.2fx %12.1f\n" "$label" "$s" "$(echo "$s / $p" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
    done
    prss=$(echo "${R[processor]}" | tr ' ' '\n' | sort -n | tail -1)
    PEAK[$fmt]+="$mib:$(echo "$prss / 1024" | bc -l | xargs printf %.1f) "
    vp=$(echo "$p / ${S[python]}" | bc -l); vc=$(echo "$p / ${S[cp]}" | bc -l)
    printf "goals: processor/python %.2f (<= 0.5: %s), processor/cp %.2f (<= 1.3: %s), peak RSS %.1f MiB (<= 64: %s)\n" \
      "$vp" "$(verdict "$vp <= 0.5")" "$vc" "$(verdict "$vc <= 1.3")" \
      "$(echo "$prss / 1024" | bc -l)" "$(verdict "$prss <= 65536")"
    unset T R S
  done
done
echo
for fmt in zip tar.gz; do
  echo "processor peak RSS by size (MiB: MiB), $fmt: ${PEAK[$fmt]}"
done

# A small MOJO as a whole process.
if [ -x "$MOJO_PROC" ]; then
  ts=()
  for _ in $(seq 30); do
    rm -rf "$BENCH_DIR/mojo-out"
    s=$(date +%s%N); "$MOJO_PROC" --source "$MOJO" --target "$BENCH_DIR/mojo-out" >/dev/null 2>&1; e=$(date +%s%N)
    ts+=($(( (e - s) / 1000 )))
  done
  med=$(printf "%s\n" "${ts[@]}" | median)
  ms=$(echo "$med / 1000" | bc -l)
  echo
  printf "== small MOJO (%s, %s bytes) as a whole process: median %.2f ms over 30 runs (<= 10 ms: %s)\n" \
    "$MOJO" "$(stat -c %s "$MOJO")" "$ms" "$(verdict "$ms <= 10")"
fi
echo "load after: $(uptime | sed 's/.*load average/load average/')"
