#!/usr/bin/env bash
# End-to-end test of the container images (`make e2e-images`, run by CI after `make images`).
#
# 1. Every image of images/images.txt exists and is what images/build.sh promises: non-root
#    user 65532, ENTRYPOINT the binary, OCI labels matching Cargo.toml and the checkout,
#    size within MAX_IMAGE_BYTES (default 10 MB).
# 2. Each processor image processes a test artifact from a read-only mount, with
#    --network=none --read-only --cap-drop=ALL as uid 65532, into a mounted empty directory
#    (the pod's emptyDir), and `verify` accepts the result; an artifact of another type is
#    refused with exit code 3 and the target is left empty.
# 3. The runtime image serves the processed H2O-3 models (MODEL_PATH, PORT), /readyz turns
#    200, POST /model/score returns H2O's reference predictions (testdata/h2o3), SIGTERM
#    stops it with exit code 0; a model type it does not serve is refused with exit code 5.
#
# A missing image is a failure, never a skip. The DAI step needs the conformance corpus
# (CONFORMANCE_DIR, default ../shared/conformance): unset and absent it says "skipped";
# set to a missing folder it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DIE_PREFIX=e2e-images
# shellcheck source=images/common.sh
. images/common.sh
ENGINE=$(container_engine)
IMAGE_PREFIX=${IMAGE_PREFIX:-}
VERSION=$(workspace_field version)
IMAGE_TAG=${IMAGE_TAG:-$VERSION}
MAX_IMAGE_BYTES=${MAX_IMAGE_BYTES:-10000000}
H2O3_MODELS=${H2O3_MODELS:-gbm_binomial drf_multinomial glm_regression}
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
  [ "$size" -le "$MAX_IMAGE_BYTES" ] || problems+=("$size bytes, over the $MAX_IMAGE_BYTES budget")
  if [ "${#problems[@]}" -eq 0 ]; then
    pass "$ref: $(awk -v b="$size" 'BEGIN { printf "%.2f MB", b / 1000000 }'), user 65532, entrypoint /usr/local/bin/$binary, labels"
  else
    fail "$ref: $(printf '%s; ' "${problems[@]}")"
  fi
done
[ "$failures" -eq 0 ] || die "$failures image(s) missing or wrong; not running containers"

# --- 2. the processors -----------------------------------------------------------------
# process IMAGE HOST_DIR SOURCE NAME EXPECTED_EXIT
# The pod's layout: HOST_DIR read-only at /artifacts (SOURCE_PATH=/artifacts/SOURCE), and
# an empty directory $out/NAME mounted as the volume /model (TARGET_PATH=/model).
process() {
  local ref=$1 dir=$2 src=$3 name=$4 expect=$5 code=0 left
  exercised="$exercised$ref "
  mkdir -p "$out/$name" && chmod 0777 "$out/$name"
  "$ENGINE" run --rm --network=none --read-only --cap-drop=ALL --security-opt=no-new-privileges \
    -v "$dir:/artifacts:ro" -v "$out/$name:/model" \
    -e SOURCE_PATH="/artifacts/$src" -e TARGET_PATH=/model \
    "$ref" >"$work/$name.stdout" 2>"$work/$name.stderr" || code=$?
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
process "$mlflow" "$PWD/testdata/mlflow" sklearn_pipeline.zip mlflow-sklearn 0 || true
process "$mlflow" "$PWD/testdata/mlflow" xgboost.tar.gz mlflow-xgboost 0 || true
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

# --- 3. the runtime --------------------------------------------------------------------
echo "== runtime (MODEL_PATH and PORT, /readyz, /model/score against H2O's reference)"
runtime=$(image_of_binary runtime-shim)
port=9090 # not the default 8080: shows that PORT is obeyed
serve() {
  local name=$1 cid hostport code i
  exercised="$exercised$runtime "
  cid=$("$ENGINE" run -d --read-only --cap-drop=ALL --security-opt=no-new-privileges \
    -p "127.0.0.1::$port" -e PORT=$port -e MODEL_PATH=/srv/model -v "$out/$name:/srv/model:ro" "$runtime")
  containers+=("$cid")
  hostport=$("$ENGINE" port "$cid" "$port/tcp" | head -n1)
  hostport=${hostport/0.0.0.0/127.0.0.1}
  for i in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$hostport/readyz" || true)
    [ "$code" = 200 ] && break
    if [ "$("$ENGINE" inspect --format '{{.State.Running}}' "$cid")" != true ]; then break; fi
    sleep 0.1
  done
  if [ "$code" != 200 ]; then
    fail "$runtime $name: /readyz never answered 200 (last: $code)"
    "$ENGINE" logs "$cid" 2>&1 | sed 's/^/     /' >&2
    return 1
  fi
  local took=$((i * 100))
  if python3 .ci/e2e_score.py "http://$hostport" "testdata/h2o3/${name#h2o3-}.input.csv" \
    "testdata/h2o3/${name#h2o3-}.predictions.csv" >"$work/$name.score" 2>&1; then
    pass "$runtime $name (MODEL_PATH=/srv/model PORT=$port): ready within ${took} ms; $(cat "$work/$name.score")"
  else
    fail "$runtime $name: /model/score differs from H2O's reference"
    sed 's/^/     /' "$work/$name.score" >&2
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$hostport/healthz" || true)
  [ "$code" = 200 ] || fail "$runtime $name: /healthz answered $code"
  "$ENGINE" stop -t 30 "$cid" >/dev/null
  code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$cid")
  if [ "$code" = 0 ]; then
    pass "$runtime $name: SIGTERM -> exit code 0"
  else
    fail "$runtime $name: exit code $code after SIGTERM"
  fi
}
for m in $H2O3_MODELS; do
  if [ -f "$out/h2o3-$m/model.json" ]; then serve "h2o3-$m" || true; else fail "$runtime: no processed h2o3-$m to serve"; fi
done

if [ -f "$out/mlflow-sklearn/model.json" ]; then
  code=0
  "$ENGINE" run --rm --network=none --read-only --cap-drop=ALL -v "$out/mlflow-sklearn:/model:ro" \
    "$runtime" >"$work/refuse.log" 2>&1 || code=$?
  if [ "$code" = 5 ]; then
    pass "$runtime on an mlflow_pyfunc directory (the image's MODEL_PATH=/model): refused with exit code 5"
  else
    fail "$runtime on an mlflow_pyfunc directory: exit code $code, expected 5"
    sed 's/^/     /' "$work/refuse.log" >&2
  fi
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
