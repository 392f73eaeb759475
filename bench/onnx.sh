#!/usr/bin/env bash
# ONNX benchmark (issue 18): the native ONNX runtime (runtime-shim's onnx backend on ONNX
# Runtime, no Python) against MLflow serving the same ONNX model (`mlflow models serve`,
# `mlflow models predict`: Python + onnxruntime) on the same rows: start-up time to ready,
# batch and REST rows/s, one-row requests/s and latency, peak RSS. What is measured and
# how: bench/onnx_bench.py.
#
#   bench/onnx.sh [MODEL...]    default: regressor classifier_zipmap pipeline mlp
#                               (testdata/onnx)
#
# Environment: ROWS (100000), REQUEST_ROWS (1000), ONE_ROW_REQUESTS (2000), RUNS (3),
# BENCH_DIR (target/bench), SHIM and MLFLOW_PROC (the release binaries), MLFLOW_VENV (a
# venv with mlflow and onnxruntime; default: the one .ci/setup-mlflow-venv.sh prints),
# ORT_DYLIB_PATH (default: that venv's onnxruntime/capi/libonnxruntime.so.1.*).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=("$@")
[ $# -gt 0 ] || MODELS=(regressor classifier_zipmap pipeline mlp)
SHIM=${SHIM:-target/release/runtime-shim}
MLFLOW_PROC=${MLFLOW_PROC:-target/release/mlflow-processor}
BENCH_DIR=${BENCH_DIR:-target/bench}

for b in "$SHIM" "$MLFLOW_PROC"; do
  [ -x "$b" ] || { echo "bench/onnx.sh: $b is missing: cargo build --release" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench/onnx.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
MLFLOW_VENV=${MLFLOW_VENV:-$(.ci/setup-mlflow-venv.sh)}
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  ORT_DYLIB_PATH=$(ls "$MLFLOW_VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.* 2>/dev/null | head -1)
fi
[ -f "${ORT_DYLIB_PATH:-}" ] || { echo "bench/onnx.sh: no libonnxruntime.so.1.* in $MLFLOW_VENV (set ORT_DYLIB_PATH)" >&2; exit 1; }

exec "$MLFLOW_VENV/bin/python" bench/onnx_bench.py \
  --shim "$SHIM" --processor "$MLFLOW_PROC" --venv "$MLFLOW_VENV" --ort-lib "$ORT_DYLIB_PATH" \
  --work "$BENCH_DIR/onnx" --rows "${ROWS:-100000}" --request-rows "${REQUEST_ROWS:-1000}" \
  --one-row-requests "${ONE_ROW_REQUESTS:-2000}" --runs "${RUNS:-3}" "${MODELS[@]}"
