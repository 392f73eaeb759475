#!/usr/bin/env bash
# Serve each sample model with the real MLflow scoring server and check that the
# reply's "predictions" equals <name>.predictions.json.
#
#   MLFLOW_VENV=/tmp/mlflow-venv bash testdata/mlflow/verify_serving.sh [name ...]
#
# Needs a venv made from testdata/mlflow/requirements.txt. Binds to 127.0.0.1 only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${MLFLOW_VENV:-/tmp/mlflow-venv}"
PORT="${MLFLOW_PORT:-5391}"
NAMES=("$@")
if [ ${#NAMES[@]} -eq 0 ]; then
  NAMES=(sklearn_pipeline xgboost lightgbm statsmodels onnx custom_pyfunc multi_output
         no_signature tensor_signature onnx_tensor sklearn_proba v1/sklearn_1_29 v1/sklearn_2_9)
fi
# `mlflow models serve --env-manager local` execs `uvicorn` from PATH.
export PATH="$VENV/bin:$PATH"
LOG_DIR="$(mktemp -d)"
pass=0
fail=0
for name in "${NAMES[@]}"; do
  log="$LOG_DIR/${name//\//_}.log"
  "$VENV/bin/mlflow" models serve -m "$HERE/$name" --env-manager local \
    -h 127.0.0.1 -p "$PORT" >"$log" 2>&1 &
  pid=$!
  ok=""
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$PORT/ping" >/dev/null 2>&1; then ok=1; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  if [ -z "$ok" ]; then
    echo "$name: server did not start"; cat "$log"; fail=$((fail + 1))
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    continue
  fi
  # A split-orient frame goes under "dataframe_split"; a tensor request ({"inputs": ...})
  # is sent as it is.
  body="$("$VENV/bin/python" -c 'import json,sys; r = json.load(open(sys.argv[1])); print(json.dumps(r if "inputs" in r else {"dataframe_split": r}))' "$HERE/$name.request.json")"
  reply="$(curl -s -X POST -H 'Content-Type: application/json' --data "$body" \
    "http://127.0.0.1:$PORT/invocations")"
  reply_file="$LOG_DIR/${name//\//_}.reply.json"
  echo "$reply" >"$reply_file"
  if "$VENV/bin/python" - "$HERE/$name.predictions.json" "$reply_file" <<'EOF'
import json, sys
want = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))
sys.exit(0 if list(got.keys()) == ["predictions"] and got["predictions"] == want else 1)
EOF
  then
    echo "$name: ok  reply=$(head -c 160 "$reply_file")"
    pass=$((pass + 1))
  else
    echo "$name: MISMATCH reply=$reply"; fail=$((fail + 1))
  fi
  # stop only the server started above (mlflow CLI + its uvicorn child)
  children="$(pgrep -P "$pid" || true)"
  kill $children "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    alive=""
    for c in $children; do kill -0 "$c" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.25
  done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
