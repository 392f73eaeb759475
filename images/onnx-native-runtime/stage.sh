#!/usr/bin/env bash
# Stages ONNX Runtime into the onnx-native-runtime build context (called by
# images/build.sh with the context folder): the onnxruntime wheel ORT_VERSION (1.32.0, as
# testdata/mlflow/requirements.txt pins it) for CPython 3.11 manylinux_2_28 x86_64,
# downloaded once with pip into ORT_CACHE_DIR and checked against ORT_WHEEL_SHA256 (pinned
# here for 1.32.0: set both to change the version). Its
# onnxruntime/capi/libonnxruntime.so.<version>, LICENSE and ThirdPartyNotices.txt go to
# CONTEXT/onnxruntime/ (the image's /opt/onnxruntime), and ORT_VERSION to
# CONTEXT/build-args.
#
# Environment: ORT_VERSION, ORT_WHEEL_SHA256, ORT_CACHE_DIR
# (${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/onnxruntime).
set -euo pipefail
ctx=${1:?usage: stage.sh CONTEXT_DIR}
DIE_PREFIX=onnx-native-runtime
die() { echo "$DIE_PREFIX: $*" >&2; exit 1; }

ORT_VERSION=${ORT_VERSION:-1.32.0}
if [ -z "${ORT_WHEEL_SHA256:-}" ]; then
  [ "$ORT_VERSION" = 1.32.0 ] || die "ORT_VERSION=$ORT_VERSION: set ORT_WHEEL_SHA256 to its wheel's sha256 too"
  ORT_WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
fi
ORT_CACHE_DIR=${ORT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/onnxruntime}

wheel="$ORT_CACHE_DIR/onnxruntime-$ORT_VERSION-cp311-cp311-manylinux_2_28_x86_64.whl"
have_sha() { [ -f "$wheel" ] && [ "$(sha256sum "$wheel" | cut -d' ' -f1)" = "$ORT_WHEEL_SHA256" ]; }
if ! have_sha; then
  mkdir -p "$ORT_CACHE_DIR"
  echo "$DIE_PREFIX: pip download onnxruntime==$ORT_VERSION into $ORT_CACHE_DIR"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
    "onnxruntime==$ORT_VERSION" -d "$ORT_CACHE_DIR"
  have_sha || die "$wheel: sha256 is $(sha256sum "$wheel" 2>/dev/null | cut -d' ' -f1), expected $ORT_WHEEL_SHA256"
fi
mkdir -p "$ctx/onnxruntime"
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
echo "ORT_VERSION=$ORT_VERSION" >>"$ctx/build-args"
