#!/usr/bin/env bash
# End-to-end test of the onnx-native-runtime image (images/onnx-native-runtime/build.sh
# builds it):
#
# 1. The image is what build.sh promises: user 65532, ENTRYPOINT the shim, OCI labels
#    matching Cargo.toml, MODEL_TYPES=onnx and ORT_DYLIB_PATH naming the library inside.
# 2. The models of testdata/onnx are processed with --model-type onnx (by the
#    mlflow-processor image when it exists, as a pod's init container would, else by
#    target/release/mlflow-processor) into directories the runtime mounts read-only.
# 3. For each, the image serves it (--read-only --cap-drop=ALL, uid 65532, PORT=9090):
#    /readyz turns 200, POST /model/score of <name>.input.csv equals onnxruntime's
#    outputs (<name>.expected.csv, floats bit for bit), /healthz answers 200, SIGTERM stops
#    it with exit code 0. The batch command in the image (`score --input ... --output -`)
#    gives the same cells. An mlflow_pyfunc directory is refused with exit code 5.
#
# A missing image is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/../.."

DIE_PREFIX=onnx-native-runtime-e2e
# shellcheck source=images/common.sh
. images/common.sh
ENGINE=$(container_engine)
IMAGE_PREFIX=${IMAGE_PREFIX:-}
VERSION=$(workspace_field version)
IMAGE_TAG=${IMAGE_TAG:-$VERSION}
ref="${IMAGE_PREFIX}onnx-native-runtime:$IMAGE_TAG"
processor_ref="${IMAGE_PREFIX}mlflow-processor:$IMAGE_TAG"
MODELS=${ONNX_MODELS:-regressor classifier_zipmap pipeline mlp}
here=images/onnx-native-runtime

failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; failures=$((failures + 1)); }
work=$(mktemp -d "${TMPDIR:-/tmp}/e2e-onnx.XXXXXX")
containers=()
cleanup() {
  for c in "${containers[@]}"; do "$ENGINE" rm -f "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work" 2>/dev/null || { [ "$ENGINE" = podman ] && podman unshare rm -rf "$work"; } || true
}
trap cleanup EXIT
chmod 0777 "$work"

# --- 1. the image --------------------------------------------------------------------
echo "== $ref ($ENGINE)"
"$ENGINE" image inspect "$ref" >/dev/null 2>&1 || die "$ref: image missing; build it with $here/build.sh"
fmt='{{.Size}}|{{.Config.User}}|{{json .Config.Entrypoint}}|{{index .Config.Labels "org.opencontainers.image.title"}}|{{index .Config.Labels "org.opencontainers.image.version"}}|{{json .Config.Env}}'
IFS='|' read -r size user entrypoint title version envs <<<"$("$ENGINE" image inspect --format "$fmt" "$ref")"
problems=()
[ "$user" = 65532:65532 ] || problems+=("user is '$user'")
[ "$entrypoint" = '["/usr/local/bin/runtime-shim"]' ] || problems+=("entrypoint is $entrypoint")
[ "$title" = onnx-native-runtime ] || problems+=("title label '$title'")
[ "$version" = "$VERSION" ] || problems+=("version label '$version', Cargo.toml says $VERSION")
case "$envs" in *'"MODEL_TYPES=onnx"'*) ;; *) problems+=("MODEL_TYPES is not onnx: $envs") ;; esac
case "$envs" in *'"ORT_DYLIB_PATH=/opt/onnxruntime/libonnxruntime.so.'*) ;; *) problems+=("no ORT_DYLIB_PATH in /opt/onnxruntime: $envs") ;; esac
if [ "${#problems[@]}" -eq 0 ]; then
  pass "$ref: $(awk -v b="$size" 'BEGIN { printf "%.1f MB", b / 1000000 }'), user 65532, entrypoint, labels, MODEL_TYPES=onnx, ORT_DYLIB_PATH"
else
  fail "$ref: $(printf '%s; ' "${problems[@]}")"
fi

# --- 2. the model directories --------------------------------------------------------
echo "== processing testdata/onnx with --model-type onnx"
if "$ENGINE" image inspect "$processor_ref" >/dev/null 2>&1; then
  how="image $processor_ref"
else
  [ -x target/release/mlflow-processor ] || die "neither $processor_ref nor target/release/mlflow-processor: make images, or cargo build --release -p mlflow-model"
  how="target/release/mlflow-processor ($processor_ref is not built)"
fi
process() { # SOURCE_DIR NAME [ARGS...]
  local src=$1 name=$2
  shift 2
  mkdir -p "$work/$name" && chmod 0777 "$work/$name"
  if [ "${how#image}" != "$how" ]; then
    "$ENGINE" run --rm --network=none --read-only --cap-drop=ALL -v "$PWD/$src:/artifacts:ro" \
      -v "$work/$name:/model" -e SOURCE_PATH=/artifacts -e TARGET_PATH=/model "$processor_ref" "$@" >/dev/null
  else
    target/release/mlflow-processor --source "$src" --target "$work/$name" --overwrite "$@" >/dev/null
  fi
}
for m in $MODELS; do
  if process "testdata/onnx/$m" "$m" --model-type onnx 2>"$work/$m.process.log"; then
    pass "$m processed by $how"
  else
    fail "$m: processing failed"; sed 's/^/     /' "$work/$m.process.log" >&2
  fi
done

# --- 3. the runtime ------------------------------------------------------------------
echo "== $ref serving (MODEL_PATH=/srv/model PORT=9090, read-only, uid 65532)"
port=9090
for m in $MODELS; do
  [ -f "$work/$m/model.json" ] || continue
  cid=$("$ENGINE" run -d --read-only --cap-drop=ALL --security-opt=no-new-privileges \
    -p "127.0.0.1::$port" -e PORT=$port -e MODEL_PATH=/srv/model -v "$work/$m:/srv/model:ro" "$ref")
  containers+=("$cid")
  hostport=$("$ENGINE" port "$cid" "$port/tcp" | head -n1)
  hostport=${hostport/0.0.0.0/127.0.0.1}
  code=000
  for i in $(seq 1 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$hostport/readyz" || true)
    [ "$code" = 200 ] && break
    [ "$("$ENGINE" inspect --format '{{.State.Running}}' "$cid")" = true ] || break
    sleep 0.1
  done
  if [ "$code" != 200 ]; then
    fail "$m: /readyz never answered 200 (last: $code)"
    "$ENGINE" logs "$cid" 2>&1 | sed 's/^/     /' >&2
    continue
  fi
  if python3 "$here/e2e_score.py" "http://$hostport" "$work/$m/model.json" \
    "testdata/onnx/$m.input.csv" "testdata/onnx/$m.expected.csv" >"$work/$m.score" 2>&1; then
    pass "$m: ready within $((i * 100)) ms; REST: $(cat "$work/$m.score")"
  else
    fail "$m: /model/score differs from onnxruntime"; sed 's/^/     /' "$work/$m.score" >&2
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$hostport/healthz" || true)
  [ "$code" = 200 ] || fail "$m: /healthz answered $code"
  "$ENGINE" logs "$cid" >"$work/$m.log" 2>&1 || true
  grep -q "ONNX Runtime loaded" "$work/$m.log" || fail "$m: no 'ONNX Runtime loaded' line in the log"
  "$ENGINE" stop -t 30 "$cid" >/dev/null
  code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$cid")
  [ "$code" = 0 ] && pass "$m: SIGTERM -> exit code 0" || fail "$m: exit code $code after SIGTERM"

  # The batch command in the image, on the same rows.
  if "$ENGINE" run --rm --network=none --read-only --cap-drop=ALL -v "$work/$m:/srv/model:ro" \
    -v "$PWD/testdata/onnx:/in:ro" "$ref" score --model-path /srv/model --input "/in/$m.input.csv" \
    --output - >"$work/$m.batch.csv" 2>"$work/$m.batch.log" \
    && python3 "$here/e2e_score.py" --csv "$work/$m.batch.csv" "$work/$m/model.json" \
      "testdata/onnx/$m.expected.csv" >"$work/$m.batch.check" 2>&1; then
    pass "$m: batch: $(cat "$work/$m.batch.check")"
  else
    fail "$m: batch in the image"; cat "$work/$m.batch.log" "$work/$m.batch.check" 2>/dev/null | sed 's/^/     /' >&2
  fi
done

# A model type this image does not serve.
if process testdata/mlflow/sklearn_pipeline pyfunc 2>"$work/pyfunc.log"; then
  code=0
  "$ENGINE" run --rm --network=none --read-only --cap-drop=ALL -v "$work/pyfunc:/model:ro" \
    "$ref" >"$work/refuse.log" 2>&1 || code=$?
  if [ "$code" = 5 ] && grep -q 'is not served by this runtime (it serves: onnx)' "$work/refuse.log"; then
    pass "an mlflow_pyfunc directory: refused with exit code 5"
  else
    fail "an mlflow_pyfunc directory: exit code $code, expected 5"; sed 's/^/     /' "$work/refuse.log" >&2
  fi
else
  fail "processing sklearn_pipeline failed"; sed 's/^/     /' "$work/pyfunc.log" >&2
fi

if [ "$failures" -ne 0 ]; then
  echo "onnx-native-runtime e2e: $failures failure(s)" >&2
  exit 1
fi
echo "onnx-native-runtime e2e: all passed"
