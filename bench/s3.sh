#!/usr/bin/env bash
# Object-storage benchmark: an MLflow zip processed straight from a local S3 server
# against KServe's storage-initializer way (download the whole object, then unpack it).
#
#   bench/s3.sh [SIZE_MIB]        default: 1024
#
# The S3 server is moto's (`moto_server`, from the venv .ci/setup-s3-venv.sh builds, or
# S3_VENV), started on a free port for the run; the artifact is bench/gen_mlflow_artifact.py's
# (2000 small files, text, incompressible weight shards), uploaded once. Alternating runs
# (RUNS, default 3) of:
#   processor   mlflow-processor s3://bench/KEY TARGET (the storage-initializer form):
#               range reads, entries inflated, hashed and written as they arrive,
#               nothing written but the target
#   download    boto3 download_file to a local file, then zipfile.extractall and hashlib
#               over every file (what a storage initializer plus a hashing step does)
# and prints the median wall seconds, the ratio to the processor and the peak RSS of each
# (the client process; the server's own memory is not counted for either). Targets are
# on BENCH_DIR's filesystem; the downloaded copy is removed after each run.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-1024}
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-target/bench}
PROC=${PROC:-target/release/mlflow-processor}
TIME=/usr/bin/time
mkdir -p "$BENCH_DIR"
[ -x "$PROC" ] || { echo "build first: cargo build --release (missing $PROC)" >&2; exit 1; }
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
S3_VENV=${S3_VENV:-$(.ci/setup-s3-venv.sh)}
PY="$S3_VENV/bin/python"

src="$BENCH_DIR/mlflow-${MIB}MiB.zip"
[ -f "$src" ] || python3 bench/gen_mlflow_artifact.py "$src" $((MIB << 20)) --format zip
key="mlflow-${MIB}MiB.zip"

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$S3_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$BENCH_DIR/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true; wait $moto 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
for _ in $(seq 100); do
  curl -sf -o /dev/null "$AWS_ENDPOINT_URL/" && break
  sleep 0.1
done
"$PY" - "$src" "$key" <<'EOF'
import sys, boto3
s3 = boto3.client("s3")
s3.create_bucket(Bucket="bench")
s3.upload_file(sys.argv[1], "bench", sys.argv[2])
print("uploaded", s3.head_object(Bucket="bench", Key=sys.argv[2])["ContentLength"], "bytes", file=sys.stderr)
EOF

measure() { # cmd...: prints "seconds maxrss_kib"
  $TIME -f "%e %M" "$@" 2>&1 >/dev/null | tail -1
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A T=() R=()
for _ in $(seq "$RUNS"); do
  for m in processor download; do
    dst="$BENCH_DIR/s3-out-$m"; rm -rf "$dst" "$dst.zip"; sync
    case $m in
      processor) r=$(measure "$PROC" "s3://bench/$key" "$dst" --log-format json) ;;
      download) r=$(measure "$PY" -c "
import hashlib, os, sys, zipfile, boto3
key, dst = sys.argv[1], sys.argv[2]
boto3.client('s3').download_file('bench', key, dst + '.zip')
zipfile.ZipFile(dst + '.zip').extractall(dst)
for root, _, names in os.walk(dst):
    for n in names:
        h = hashlib.sha256()
        with open(os.path.join(root, n), 'rb') as f:
            while b := f.read(1 << 20):
                h.update(b)
" "$key" "$dst") ;;
    esac
    [ "$m" = processor ] && [ ! -f "$dst/model.json" ] && { echo "the processor wrote no model.json" >&2; exit 1; }
    T[$m]+="${r% *} "; R[$m]+="${r#* } "
    rm -rf "$dst" "$dst.zip"
  done
done

p=$(echo "${T[processor]}" | tr ' ' '\n' | median)
echo
echo "== ${MIB} MiB MLflow zip ($(stat -c %s "$src") bytes) from a local S3 server (moto), median of $RUNS runs"
printf "%-10s %10s %14s %12s\n" method seconds "vs processor" "peak RSS MiB"
for m in processor download; do
  s=$(echo "${T[$m]}" | tr ' ' '\n' | median)
  rss=$(echo "${R[$m]}" | tr ' ' '\n' | sort -n | tail -1)
  printf "%-10s %10.2f %13.2fx %12.1f\n" "$m" "$s" "$(echo "$s / $p" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
done
