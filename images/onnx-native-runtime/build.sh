#!/usr/bin/env bash
# Builds the onnx-native-runtime image (images/onnx-native-runtime/Dockerfile): the glibc
# release build of runtime-shim and ONNX Runtime's shared library from the onnxruntime
# wheel, on the Debian base, without network in the image build.
#
#   images/onnx-native-runtime/build.sh
#
# 1. The base: BASE_IMAGE (default toolkit-base-debian:bookworm). When it is the
#    project's own base and images/base/build.sh exists, that script makes it (or finds
#    it cached); otherwise it must already be in the engine's store.
# 2. cargo build --release -p runtime-shim (the host's glibc target; the FROM scratch
#    images use the static musl build, which cannot load libonnxruntime).
# 3. The onnxruntime wheel ORT_VERSION (1.32.0, as testdata/mlflow/requirements.txt pins
#    it) for CPython 3.11 manylinux_2_28 x86_64, downloaded once with pip into
#    ORT_CACHE_DIR and checked against ORT_WHEEL_SHA256 (pinned here for 1.32.0: set both
#    to change the version); its onnxruntime/capi/libonnxruntime.so.<version>, LICENSE and
#    ThirdPartyNotices.txt go into the image under /opt/onnxruntime.
# 4. <engine> build --network=none, tagged IMAGE_PREFIX + onnx-native-runtime:IMAGE_TAG.
#
# Environment: CONTAINER_ENGINE, IMAGE_PREFIX, IMAGE_TAG (as images/build.sh), BASE_IMAGE,
# ORT_VERSION, ORT_WHEEL_SHA256, ORT_CACHE_DIR
# (${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/onnxruntime), CARGO, CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

DIE_PREFIX=onnx-native-runtime
# shellcheck source=images/common.sh
. images/common.sh
ENGINE=$(container_engine)
IMAGE=onnx-native-runtime
CARGO=${CARGO:-cargo}
VERSION=$(workspace_field version)
IMAGE_TAG=${IMAGE_TAG:-$VERSION}
IMAGE_PREFIX=${IMAGE_PREFIX:-}
BASE_IMAGE=${BASE_IMAGE:-toolkit-base-debian:bookworm}
ORT_VERSION=${ORT_VERSION:-1.32.0}
if [ -z "${ORT_WHEEL_SHA256:-}" ]; then
  [ "$ORT_VERSION" = 1.32.0 ] || die "ORT_VERSION=$ORT_VERSION: set ORT_WHEEL_SHA256 to its wheel's sha256 too"
  ORT_WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
fi
ORT_CACHE_DIR=${ORT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/onnxruntime}

# --- 1. the base ------------------------------------------------------------------------
if [ "${BASE_IMAGE%%:*}" = toolkit-base-debian ] && [ -x images/base/build.sh ]; then
  CONTAINER_ENGINE=$ENGINE images/base/build.sh debian
fi
"$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
  || die "the base image $BASE_IMAGE is not in $ENGINE's store: images/base/build.sh debian makes toolkit-base-debian:bookworm without a registry; with one, BASE_IMAGE=debian:bookworm-slim"

# --- 2. the glibc runtime-shim ------------------------------------------------------------
echo "$IMAGE: $CARGO build --release -p runtime-shim --bin runtime-shim"
$CARGO build --release --locked -p runtime-shim --bin runtime-shim
target_dir=${CARGO_TARGET_DIR:-target}
shim="$target_dir/release/runtime-shim"
[ -x "$shim" ] || die "$shim was not built"

# --- 3. ONNX Runtime from the wheel -------------------------------------------------------
wheel="$ORT_CACHE_DIR/onnxruntime-$ORT_VERSION-cp311-cp311-manylinux_2_28_x86_64.whl"
have_sha() { [ -f "$wheel" ] && [ "$(sha256sum "$wheel" | cut -d' ' -f1)" = "$ORT_WHEEL_SHA256" ]; }
if ! have_sha; then
  mkdir -p "$ORT_CACHE_DIR"
  echo "$IMAGE: pip download onnxruntime==$ORT_VERSION into $ORT_CACHE_DIR"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
    "onnxruntime==$ORT_VERSION" -d "$ORT_CACHE_DIR"
  have_sha || die "$wheel: sha256 is $(sha256sum "$wheel" 2>/dev/null | cut -d' ' -f1), expected $ORT_WHEEL_SHA256"
fi
ctx="$target_dir/images-context/$IMAGE"
rm -rf "$ctx" && mkdir -p "$ctx/onnxruntime"
cp "$shim" "$ctx/runtime-shim"
python3 - "$wheel" "$ctx/onnxruntime" "$ORT_VERSION" <<'PY'
import os, sys, zipfile
wheel, out, version = sys.argv[1:]
want = {
    f"onnxruntime/capi/libonnxruntime.so.{version}": f"libonnxruntime.so.{version}",
    "onnxruntime/LICENSE": "LICENSE",
    "onnxruntime/ThirdPartyNotices.txt": "ThirdPartyNotices.txt",
}
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for src, dst in want.items():
        if src not in names:
            sys.exit(f"{wheel} has no {src}")
        with z.open(src) as f, open(os.path.join(out, dst), "wb") as g:
            g.write(f.read())
PY

# --- 4. the image -------------------------------------------------------------------------
ref="$IMAGE_PREFIX$IMAGE:$IMAGE_TAG"
echo "$IMAGE: $ENGINE build $ref (on $BASE_IMAGE, ONNX Runtime $ORT_VERSION)"
"$ENGINE" build --network=none --quiet \
  --file images/onnx-native-runtime/Dockerfile \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  --build-arg "ORT_VERSION=$ORT_VERSION" \
  --build-arg "VERSION=$VERSION" \
  --build-arg "REVISION=$(source_revision)" \
  --build-arg "SOURCE=$(workspace_field repository)" \
  --build-arg "LICENSES=$(workspace_field license)" \
  --tag "$ref" \
  "$ctx" >/dev/null
size=$("$ENGINE" image inspect --format '{{.Size}}' "$ref")
echo "$IMAGE: built $ref ($(awk -v b="$size" 'BEGIN { printf "%.1f MB", b / 1000000 }'))"
