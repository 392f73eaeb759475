#!/usr/bin/env bash
# End-to-end test of the container images (`make e2e-images`, run by CI after `make images`):
# for every composition of catalog.json, the processor image processes a test artifact and
# the runtime image serves it with the reference scores.
#
# 1. Every image of images/images.txt exists and is what images/build.sh promises: non-root
#    user 65532, ENTRYPOINT the binary, OCI labels matching Cargo.toml and the checkout,
#    size within its budget (images.txt's max_mb).
# 2. Each processor image processes test artifacts from a read-only mount, with
#    --network=none --read-only --cap-drop=ALL as uid 65532, into a mounted empty directory
#    (the pod's emptyDir), and `verify` accepts the result; an artifact of another type is
#    refused with exit code 3 and the target is left empty.
# 3. Each runtime image serves what its processors wrote (MODEL_PATH, PORT=9090, read-only
#    root filesystem, --cap-drop=ALL, the port published on loopback only): /readyz turns 200
#    (the time from `run` to ready is printed), POST /model/score returns the reference
#    (H2O-3: genmodel's predictions; ONNX: onnxruntime's outputs, floats bit for bit, also
#    through the batch command; MLflow: MLflow's own predictions for the sklearn pipeline,
#    xgboost, lightgbm, statsmodels, custom pyfunc, predict_proba (tensor output) and
#    tensor ONNX models; DAI: a conformance pipeline on
#    daimojo, and the project's stand-in scorer end to end), /healthz answers, SIGTERM stops it with exit code 0. Refusals: a
#    model type the image does not serve (exit 5), MLflow requirements the image does not
#    satisfy with MLFLOW_REQUIRE_REQUIREMENTS_MATCH (exit 6), the DAI conformance pipelines
#    without a licence (exit 9, with how to provide one), a TOML pipeline the C++ runtime
#    does not read (exit 6). The protobuf conformance pipeline is scored by daimojo through
#    the whole path and equals daimojo's predict called directly.
#
# A missing image is a failure, never a skip. The DAI pipelines need the conformance
# corpus (CONFORMANCE_DIR, default ../shared/conformance): unset and absent it says
# "skipped"; set to a missing folder it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DIE_PREFIX=e2e-images
# shellcheck source=images/common.sh
. images/common.sh
ENGINE=$(container_engine)
IMAGE_PREFIX=${IMAGE_PREFIX:-}
VERSION=$(workspace_field version)
IMAGE_TAG=${IMAGE_TAG:-$VERSION}
H2O3_MODELS=${H2O3_MODELS:-gbm_binomial drf_multinomial glm_regression}
ONNX_MODELS=${ONNX_MODELS:-regressor classifier_zipmap pipeline mlp}
MLFLOW_MODELS=${MLFLOW_MODELS:-sklearn_pipeline xgboost lightgbm statsmodels custom_pyfunc sklearn_proba onnx_tensor}
if [ -z "${CONFORMANCE_DIR:-}" ] && [ -d ../shared/conformance ]; then
  CONFORMANCE_DIR=$(cd ../shared/conformance && pwd)
fi

started=$(date +%s)
failures=0
exercised=" "
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; failures=$((failures + 1)); }

work=$(mktemp -d "${TMPDIR:-/tmp}/e2e-images.XXXXXX")
containers=()
cleanup() {
  for c in "${containers[@]}"; do "$ENGINE" rm -f "$c" >/dev/null 2>&1 || true; done
  # Files written by uid 65532; a rootless podman has to remove them in its user namespace.
  rm -rf "$work" 2>/dev/null || { [ "$ENGINE" = podman ] && podman unshare rm -rf "$work"; } || true
}
trap cleanup EXIT
out="$work/out"
mkdir -p "$out"
chmod 0777 "$out" # the containers run as uid 65532, like a pod with fsGroup on an emptyDir

# shellcheck disable=SC2119 # every image: a missing one is a failure
read_images
ref_of() { echo "$IMAGE_PREFIX$1:$IMAGE_TAG"; }
image_of_binary() {
  local i
  for i in "${!BINARIES[@]}"; do [ "${BINARIES[$i]}" = "$1" ] && { ref_of "${IMAGES[$i]}"; return; }; done
  die "images/images.txt has no image for the binary $1"
}

# --- 1. the images ---------------------------------------------------------------------
echo "== images ($ENGINE)"
revision=$(source_revision)
for i in "${!IMAGES[@]}"; do
  image=${IMAGES[$i]} binary=${BINARIES[$i]} ref=$(ref_of "${IMAGES[$i]}")
  if ! "$ENGINE" image inspect "$ref" >/dev/null 2>&1; then
    fail "$ref: image missing (binary $binary of package ${PACKAGES[$i]}); build it with make images"
    continue
  fi
  fmt='{{.Size}}|{{.Config.User}}|{{json .Config.Entrypoint}}'
  for l in title version source revision licenses; do fmt="$fmt|{{index .Config.Labels \"org.opencontainers.image.$l\"}}"; done
  IFS='|' read -r size user entrypoint title version source rev licenses <<<"$("$ENGINE" image inspect --format "$fmt" "$ref")"
  problems=()
  [ "$user" = 65532:65532 ] || problems+=("user is '$user', not 65532:65532")
  [ "$entrypoint" = "[\"/usr/local/bin/$binary\"]" ] || problems+=("entrypoint is $entrypoint")
  [ "$title" = "$image" ] || problems+=("title label '$title'")
  [ "$version" = "$VERSION" ] || problems+=("version label '$version', Cargo.toml says $VERSION")
  [ "$source" = "$(workspace_field repository)" ] || problems+=("source label '$source'")
  [ "$licenses" = "$(workspace_field license)" ] || problems+=("licenses label '$licenses'")
  git cat-file -e "${rev%-dirty}^{commit}" 2>/dev/null || problems+=("revision label '$rev' is not a commit of this repository")
  [ "$rev" = "$revision" ] || echo "note $ref: built from $rev, the checkout is $revision (make images to rebuild)"
  budget=$((MAX_MBS[i] * 1000000))
  [ "$size" -le "$budget" ] || problems+=("$size bytes, over its budget of ${MAX_MBS[$i]} MB (images/images.txt)")
  if [ "${#problems[@]}" -eq 0 ]; then
    pass "$ref: $(awk -v b="$size" 'BEGIN { printf "%.2f MB", b / 1000000 }') (budget ${MAX_MBS[$i]} MB, base ${BASES[$i]}), user 65532, entrypoint /usr/local/bin/$binary, labels"
  else
    fail "$ref: $(printf '%s; ' "${problems[@]}")"
  fi
done
[ "$failures" -eq 0 ] || die "$failures image(s) missing or wrong; not running containers"

# --- 2. the processors -----------------------------------------------------------------
# process IMAGE HOST_DIR SOURCE NAME EXPECTED_EXIT [PROCESSOR ARGS...]
# The pod's layout: HOST_DIR read-only at /artifacts (SOURCE_PATH=/artifacts/SOURCE), and
# an empty directory $out/NAME mounted as the volume /model (TARGET_PATH=/model).
process() {
  local ref=$1 dir=$2 src=$3 name=$4 expect=$5 code=0 left
  shift 5
  exercised="$exercised$ref "
  mkdir -p "$out/$name" && chmod 0777 "$out/$name"
  "$ENGINE" run --rm --network=none --read-only --cap-drop=ALL --security-opt=no-new-privileges \
    -v "$dir:/artifacts:ro" -v "$out/$name:/model" \
    -e SOURCE_PATH="/artifacts/$src" -e TARGET_PATH=/model \
    "$ref" "$@" >"$work/$name.stdout" 2>"$work/$name.stderr" || code=$?
  if [ "$code" -ne "$expect" ]; then
    fail "$ref $src: exit code $code, expected $expect"
    sed 's/^/     /' "$work/$name.stderr" >&2
    return 1
  fi
  if [ "$expect" -ne 0 ]; then
    left=$(find "$out/$name" -mindepth 1 -maxdepth 1 -printf '%f ')
    if [ -n "$left" ]; then
      fail "$ref $src: exit code $code but the target is not left empty: $left"
      return 1
    fi
    pass "$ref $src: refused with exit code $code, target left empty ($(grep -m1 '^error' "$work/$name.stderr" | cut -c1-100)...)"
    return 0
  fi
  [ -f "$out/$name/model.json" ] || { fail "$ref $src: exit 0 but no model.json"; return 1; }
  code=0
  "$ENGINE" run --rm --network=none --read-only --cap-drop=ALL -v "$out/$name:/model:ro" \
    -e TARGET_PATH=/model "$ref" verify >"$work/$name.verify" 2>&1 || code=$?
  if [ "$code" -ne 0 ]; then
    fail "$ref verify: exit code $code"
    sed 's/^/     /' "$work/$name.verify" >&2
    return 1
  fi
  pass "$ref $src: $(grep -m1 '^model type' "$work/$name.stdout" | tr -s ' '), verify ok"
}

echo "== processors (--network=none --read-only, source mounted read-only)"
h2o3=$(image_of_binary h2o3-mojo-processor)
for m in $H2O3_MODELS; do
  process "$h2o3" "$PWD/testdata/h2o3" "$m.zip" "h2o3-$m" 0 || true
done
process "$h2o3" "$PWD/testdata/mlflow" sklearn_pipeline.zip h2o3-refused 3 || true

mlflow=$(image_of_binary mlflow-processor)
for m in $MLFLOW_MODELS; do
  src=$m
  [ -d "testdata/mlflow/$m" ] || { echo "no testdata/mlflow/$m" >&2; exit 1; }
  case "$m" in sklearn_pipeline) src=sklearn_pipeline.zip ;; xgboost) src=xgboost.tar.gz ;; esac
  process "$mlflow" "$PWD/testdata/mlflow" "$src" "mlflow-$m" 0 || true
done
for m in $ONNX_MODELS; do
  process "$mlflow" "$PWD/testdata/onnx" "$m" "onnx-$m" 0 --model-type onnx || true
done
process "$mlflow" "$PWD/testdata/mlflow" h2o_mojo_wrapped mlflow-h2o3 0 --model-type h2o3_mojo || true
process "$mlflow" "$PWD/testdata/h2o3" gbm_binomial.zip mlflow-refused 3 || true

dai=$(image_of_binary dai-mojo-processor)
process "$dai" "$PWD/testdata/h2o3" gbm_binomial.zip dai-refused 3 || true
if [ -z "${CONFORMANCE_DIR:-}" ]; then
  echo "skipped: $dai on DAI pipelines: CONFORMANCE_DIR not set and ../shared/conformance absent (DAI pipelines cannot be generated, so none are in testdata)"
elif [ ! -d "$CONFORMANCE_DIR/dai" ]; then
  fail "CONFORMANCE_DIR=$CONFORMANCE_DIR has no dai/ folder"
else
  process "$dai" "$(cd "$CONFORMANCE_DIR/dai" && pwd)" sw_mojo2data dai-mojo2data 0 || true
  process "$dai" "$(cd "$CONFORMANCE_DIR/dai" && pwd)" sw_proto_based_pipeline.mojo dai-proto 0 || true
fi
# The stand-in pipeline: a TOML pipeline.mojo with the columns of gbm_binomial, which the
# project's stand-in scorer (the runtime shim serving that H2O-3 model) scores.
mkdir -p "$work/stand-in"
python3 - "$work/stand-in/pipeline.mojo" <<'PY'
import sys, zipfile
toml = """mojo_version = 2.0
uuid = 'e3c1b3a2-0000-4000-8000-000000000007'
time_created = 2024-05-01T00:00:00.000000
missing_values = ['', 'NA']

[columns]
features = [
  ['x1', 'float64'],
  ['x2', 'float64'],
  ['x3', 'float64'],
  ['color', 'str'],
]
outputs = [
  ['predict', 'str'],
  ['no', 'float64'],
  ['yes', 'float64'],
]
"""
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("mojo/", "")
    z.writestr("mojo/pipeline.toml", toml)
PY
process "$dai" "$work/stand-in" pipeline.mojo dai-stand-in 0 || true

# --- 3. the runtimes -------------------------------------------------------------------
port=9090 # not the default 8080: shows that PORT is obeyed
ready_ms=0 hostport="" cid=""
# start IMAGE MODEL_DIR NAME [run flags...]: runs the runtime detached (read-only, no
# capabilities, MODEL_PATH=/srv/model, PORT=9090) and waits for /readyz (up to
# READY_LIMIT_SECS, default 300); sets cid, hostport and ready_ms.
start() {
  local ref=$1 dir=$2 name=$3 code=000 t0 i
  shift 3
  exercised="$exercised$ref "
  t0=$(date +%s%N)
  cid=$("$ENGINE" run -d --name "e2e-images-$$-$name" --read-only --cap-drop=ALL --security-opt=no-new-privileges \
    -p "127.0.0.1::$port" -e PORT=$port -e MODEL_PATH=/srv/model -v "$dir:/srv/model:ro" "$@" "$ref")
  containers+=("$cid")
  hostport=$("$ENGINE" port "$cid" "$port/tcp" | head -n1)
  hostport=${hostport/0.0.0.0/127.0.0.1}
  for i in $(seq 1 $((${READY_LIMIT_SECS:-300} * 20))); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$hostport/readyz" || true)
    [ "$code" = 200 ] && break
    [ "$("$ENGINE" inspect --format '{{.State.Running}}' "$cid")" = true ] || break
    sleep 0.05
  done
  ready_ms=$((($(date +%s%N) - t0) / 1000000))
  if [ "$code" != 200 ]; then
    fail "$ref $name: /readyz never answered 200 (last: $code)"
    "$ENGINE" logs "$cid" 2>&1 | tail -n 30 | sed 's/^/     /' >&2
    return 1
  fi
}
# stop_checked IMAGE NAME: /healthz, then SIGTERM -> exit code 0.
stop_checked() {
  local ref=$1 name=$2 code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$hostport/healthz" || true)
  [ "$code" = 200 ] || fail "$ref $name: /healthz answered $code"
  "$ENGINE" logs "$cid" >"$work/$name.log" 2>&1 || true
  "$ENGINE" stop -t 30 "$cid" >/dev/null
  code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$cid")
  if [ "$code" = 0 ]; then
    pass "$ref $name: SIGTERM -> exit code 0"
  else
    fail "$ref $name: exit code $code after SIGTERM"
  fi
}
# refuse IMAGE MODEL_DIR NAME EXPECTED_EXIT NEEDLE [run flags...]: the runtime stops at
# start-up with EXPECTED_EXIT and a log naming NEEDLE.
refuse() {
  local ref=$1 dir=$2 name=$3 expect=$4 needle=$5 code=0
  shift 5
  exercised="$exercised$ref "
  "$ENGINE" run --rm --read-only --cap-drop=ALL --security-opt=no-new-privileges \
    -v "$dir:/model:ro" "$@" "$ref" >"$work/$name.refuse.log" 2>&1 || code=$?
  if [ "$code" = "$expect" ] && grep -qF -- "$needle" "$work/$name.refuse.log"; then
    pass "$ref $name: refused with exit code $code ($(grep -m1 -oF -- "$needle" "$work/$name.refuse.log" | cut -c1-90)...)"
  else
    fail "$ref $name: exit code $code, expected $expect with '$needle'"
    tail -n 20 "$work/$name.refuse.log" | sed 's/^/     /' >&2
  fi
}
ready_line() { echo "ready ${ready_ms} ms after run"; }

echo "== runtime-shim (H2O-3, native): /model/score against H2O's reference"
runtime=$(ref_of runtime-shim)
for m in $H2O3_MODELS mlflow-h2o3; do
  name=h2o3-$m ref_name=$m
  [ "$m" = mlflow-h2o3 ] && name=mlflow-h2o3 ref_name=h2o_mojo_wrapped
  [ -f "$out/$name/model.json" ] || { fail "$runtime: no processed $name to serve"; continue; }
  start "$runtime" "$out/$name" "$name" || continue
  input=testdata/h2o3/$ref_name.input.csv expected=testdata/h2o3/$ref_name.predictions.csv
  [ "$m" = mlflow-h2o3 ] && input=testdata/mlflow/$ref_name.input.csv expected=testdata/mlflow/$ref_name.predictions.csv
  if python3 .ci/e2e_score.py "http://$hostport" "$input" "$expected" >"$work/$name.score" 2>&1; then
    pass "$runtime $name: $(ready_line); $(cat "$work/$name.score")"
  else
    fail "$runtime $name: /model/score differs from H2O's reference"; sed 's/^/     /' "$work/$name.score" >&2
  fi
  stop_checked "$runtime" "$name"
  # The static shim copies with runtime-shim/copy-routines, not musl's slow routines.
  grep -q "copies=copy-routines" "$work/$name.log" \
    || fail "$runtime $name: the start-up log does not say copies=copy-routines (musl's memcpy linked?)"
done
[ -f "$out/mlflow-sklearn_pipeline/model.json" ] \
  && refuse "$runtime" "$out/mlflow-sklearn_pipeline" shim-pyfunc 5 "is not served by this runtime" --network=none

echo "== onnx-native-runtime (ONNX Runtime, no Python): outputs against onnxruntime's, REST and batch"
onnx=$(ref_of onnx-native-runtime)
for m in $ONNX_MODELS; do
  name=onnx-$m
  [ -f "$out/$name/model.json" ] || { fail "$onnx: no processed $name to serve"; continue; }
  start "$onnx" "$out/$name" "$name" || continue
  if python3 .ci/e2e_onnx_score.py "http://$hostport" "$out/$name/model.json" \
    "testdata/onnx/$m.input.csv" "testdata/onnx/$m.expected.csv" >"$work/$name.score" 2>&1; then
    pass "$onnx $m: $(ready_line); REST: $(cat "$work/$name.score")"
  else
    fail "$onnx $m: /model/score differs from onnxruntime"; sed 's/^/     /' "$work/$name.score" >&2
  fi
  stop_checked "$onnx" "$name"
  grep -q "ONNX Runtime loaded" "$work/$name.log" || fail "$onnx $m: no 'ONNX Runtime loaded' line in the log"
  if "$ENGINE" run --rm --network=none --read-only --cap-drop=ALL -v "$out/$name:/srv/model:ro" \
    -v "$PWD/testdata/onnx:/in:ro" "$onnx" score --model-path /srv/model --input "/in/$m.input.csv" \
    --output - >"$work/$name.batch.csv" 2>"$work/$name.batch.log" \
    && python3 .ci/e2e_onnx_score.py --csv "$work/$name.batch.csv" "$out/$name/model.json" \
      "testdata/onnx/$m.expected.csv" >"$work/$name.batch.check" 2>&1; then
    pass "$onnx $m: batch: $(cat "$work/$name.batch.check")"
  else
    fail "$onnx $m: batch in the image"; cat "$work/$name.batch.log" "$work/$name.batch.check" 2>/dev/null | sed 's/^/     /' >&2
  fi
done
[ -f "$out/mlflow-sklearn_pipeline/model.json" ] \
  && refuse "$onnx" "$out/mlflow-sklearn_pipeline" onnx-pyfunc 5 "is not served by this runtime (it serves: onnx)" --network=none

echo "== mlflow-pyfunc-runtime (mlflow models serve behind the shim): scores against MLflow's own"
pyfunc=$(ref_of mlflow-pyfunc-runtime)
for m in $MLFLOW_MODELS; do
  name=mlflow-$m
  [ -f "$out/$name/model.json" ] || { fail "$pyfunc: no processed $name to serve"; continue; }
  start "$pyfunc" "$out/$name" "$name" || continue
  if python3 .ci/e2e_mlflow_score.py "http://$hostport" "$out/$name/model.json" \
    "testdata/mlflow/$m.request.json" "testdata/mlflow/$m.predictions.json" >"$work/$name.score" 2>&1; then
    pass "$pyfunc $m: $(ready_line); $(cat "$work/$name.score")"
  else
    fail "$pyfunc $m: /model/score differs from MLflow's predictions"; sed 's/^/     /' "$work/$name.score" >&2
  fi
  stop_checked "$pyfunc" "$name"
  if grep -q "does not satisfy" "$work/$name.log"; then
    fail "$pyfunc $m: the image does not satisfy the model's requirements: $(grep -m1 -o 'does not satisfy.*' "$work/$name.log" | cut -c1-200)"
  fi
done
if [ -f "$out/mlflow-sklearn_pipeline/model.json" ]; then
  # The same model asking for a scikit-learn the image does not have (model.json is not
  # covered by verify): refused before the server starts when the deployer says so.
  cp -R "$out/mlflow-sklearn_pipeline" "$work/mlflow-unmet"
  python3 - "$work/mlflow-unmet/model.json" <<'PY'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
m["metadata"]["requirements"].append("scikit-learn<1.0")
json.dump(m, open(p, "w"))
PY
  refuse "$pyfunc" "$work/mlflow-unmet" mlflow-unmet 6 "refused because MLFLOW_REQUIRE_REQUIREMENTS_MATCH is set" \
    --network=none -e MLFLOW_REQUIRE_REQUIREMENTS_MATCH=true
fi
[ -f "$out/h2o3-gbm_binomial/model.json" ] \
  && refuse "$pyfunc" "$out/h2o3-gbm_binomial" pyfunc-h2o3 5 "is not served by this runtime (it serves: mlflow_pyfunc)" --network=none

echo "== dai-mojo-runtime (daimojo behind the shim): licence refusals, the stand-in scorer end to end"
daiimg=$(ref_of dai-mojo-runtime)
for name in dai-mojo2data dai-proto; do
  [ -f "$out/$name/model.json" ] || continue
  refuse "$daiimg" "$out/$name" "$name-no-licence" 9 "mount the licence file (e.g. from a Kubernetes Secret) at /license/license.sig" --network=none
done
if [ -f "$out/dai-proto/model.json" ]; then
  # A real pipeline on the real C++ runtime: daimojo 2.9.2 loads this (protobuf) pipeline
  # and scores it; the key only has to be present for the image's own licence check.
  # Reference: daimojo's predict called directly in the same image on the same rows.
  cat >"$out/dai-rows.json" <<'JSON'
{"fields": ["pclass", "sex", "age", "ticket", "fare", "cabin"],
 "rows": [["1", "female", "29", "24160", "211.3375", "B5"],
          ["3", "male", "", "A/5 21171", "7.25", ""],
          ["2", "female", "14", "237736", "30.0708", ""],
          ["3", "male", "40.5", "C.A. 2673", "20.25", ""],
          ["1", "male", "71", "PC 17609", "49.5042", "A5"]]}
JSON
  chmod 0644 "$out/dai-rows.json"
  if "$ENGINE" run --rm --network=none --read-only -v "$out:/w:ro" -v "$PWD/.ci:/ci:ro" \
    --entrypoint /opt/venv/bin/python "$daiimg" /ci/e2e_dai_score.py reference /w/dai-rows.json \
    /w/dai-proto/pipeline.mojo >"$work/dai-proto.reference.json" 2>"$work/dai-proto.reference.log" \
    && start "$daiimg" "$out/dai-proto" dai-proto -e DRIVERLESS_AI_LICENSE_KEY=e2e-placeholder-key; then
    if python3 .ci/e2e_dai_score.py compare "http://$hostport" "$out/dai-rows.json" \
      "$work/dai-proto.reference.json" >"$work/dai-proto.score" 2>&1; then
      pass "$daiimg sw_proto_based_pipeline on daimojo: $(ready_line); $(cat "$work/dai-proto.score")"
    else
      fail "$daiimg sw_proto_based_pipeline: /model/score differs from daimojo"; sed 's/^/     /' "$work/dai-proto.score" >&2
    fi
    stop_checked "$daiimg" dai-proto
    grep -q "e2e-placeholder-key" "$work/dai-proto.log" && fail "$daiimg: the licence key appears in the log"
  else
    fail "$daiimg sw_proto_based_pipeline: could not score it"; cat "$work/dai-proto.reference.log" | tail -n 5 | sed 's/^/     /' >&2
  fi
fi
if [ -f "$out/dai-mojo2data/model.json" ]; then
  # A TOML pipeline, which the C++ runtime does not read: the scorer says so (use the Java
  # mojo2-runtime) and the start fails with exit code 6.
  refuse "$daiimg" "$out/dai-mojo2data" dai-mojo2data-toml 6 "needs the Java mojo2-runtime instead" \
    --network=none -e DRIVERLESS_AI_LICENSE_KEY=e2e-placeholder-key
fi
if [ -f "$out/dai-stand-in/model.json" ] && [ -f "$out/h2o3-gbm_binomial/model.json" ]; then
  # The project's stand-in scorer: the shim itself serving the H2O-3 model with the
  # pipeline's columns, started by the image's shim as its external DAI scorer.
  if start "$daiimg" "$out/dai-stand-in" dai-stand-in \
    -v "$out/h2o3-gbm_binomial:/stand-in:ro" -e DRIVERLESS_AI_LICENSE_KEY=stand-in-licence \
    -e DAI_SCORER_COMMAND="/usr/local/bin/runtime-shim --model-path /stand-in --model-types h2o3_mojo --host {host} --port {port}"; then
    if python3 .ci/e2e_score.py "http://$hostport" testdata/h2o3/gbm_binomial.input.csv \
      testdata/h2o3/gbm_binomial.predictions.csv >"$work/dai-stand-in.score" 2>&1; then
      pass "$daiimg stand-in scorer: $(ready_line); $(cat "$work/dai-stand-in.score")"
    else
      fail "$daiimg stand-in scorer: /model/score differs"; sed 's/^/     /' "$work/dai-stand-in.score" >&2
    fi
    stop_checked "$daiimg" dai-stand-in
    grep -q "stand-in-licence" "$work/dai-stand-in.log" && fail "$daiimg: the licence key appears in the log"
  fi
else
  fail "$daiimg: no processed stand-in pipeline or gbm_binomial to run the stand-in scorer"
fi

# Every image of images.txt has an end-to-end step above.
for image in "${IMAGES[@]}"; do
  case "$exercised" in *" $(ref_of "$image") "*) ;; *) fail "$(ref_of "$image"): no end-to-end step runs it (add one to .ci/e2e-images.sh)" ;; esac
done

elapsed=$(($(date +%s) - started))
if [ "$failures" -ne 0 ]; then
  echo "e2e-images: $failures failure(s) in ${elapsed}s" >&2
  exit 1
fi
echo "e2e-images: all passed in ${elapsed}s"
