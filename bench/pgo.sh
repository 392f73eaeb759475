#!/usr/bin/env bash
# A profile-guided (PGO) build of the runtime shim for this host, for the serving
# benchmark: `SHIM=$(bench/pgo.sh) bench/serve.sh`. Prints the binary's path on stdout.
#
#   1. builds the shim instrumented (`-Cprofile-generate`, its own target directory
#      PGO_TARGET_DIR, default target/pgo, so the normal build is left as it is);
#   2. trains it: each TRAIN_MODELS MOJO of testdata/h2o3, processed with
#      h2o3-mojo-processor, served and loaded by `shim-load` (1, 100 and 1000 rows per
#      request, 32 connections, TRAIN_SECONDS each). The default models are none of
#      bench/serve.sh's five, so the benchmark does not score the models it was trained on;
#   3. merges the profile with `llvm-profdata` (rustup's llvm-tools component, added
#      if missing) and builds the shim again with `-Cprofile-use`.
#
# PGO_TRIPLE (default: the host's) builds for another target of this machine:
# `PGO=1 images/build.sh` uses it with x86_64-unknown-linux-musl for the images' static
# shim (the training runs that static binary here).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CARGO=${CARGO:-cargo}
PGO_TARGET_DIR=${PGO_TARGET_DIR:-target/pgo}
TRAIN_SECONDS=${TRAIN_SECONDS:-1}
read -r -a TRAIN_MODELS <<< "${TRAIN_MODELS:-gbm_multinomial gbm_regression drf_binomial glm_regression glm_multinomial xgboost_regression xgboost_onehot_binomial deeplearning_binomial kmeans stacked_ensemble_binomial}"
HOST=$(rustc -vV | sed -n 's/^host: //p')
TRIPLE=${PGO_TRIPLE:-$HOST}
DATA=$(realpath -m "$PGO_TARGET_DIR/profiles")
REL=${CARGO_TARGET_DIR:-target}/release

rustup component add llvm-tools >/dev/null 2>&1 || true
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata
[ -x "$PROFDATA" ] || { echo "no llvm-profdata at $PROFDATA (rustup component add llvm-tools)" >&2; exit 1; }

build() { # RUSTFLAGS
  RUSTFLAGS="$1" CARGO_TARGET_DIR="$PGO_TARGET_DIR" "$CARGO" build --release --locked \
    --target "$TRIPLE" -p runtime-shim --bin runtime-shim >&2
}
echo "pgo: instrumented build" >&2
rm -rf "$DATA"
build "-Cprofile-generate=$DATA"
"$CARGO" build --release --locked -p shim-load -p h2o3-mojo >&2
SHIM=$PGO_TARGET_DIR/$TRIPLE/release/runtime-shim

work=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$work"; }
trap cleanup EXIT
for model in "${TRAIN_MODELS[@]}"; do
  "$REL/h2o3-mojo-processor" --source "testdata/h2o3/$model.zip" --target "$work/$model" >/dev/null 2>&1
  : >"$work/log"
  # The default log level, as served: the access lines are part of the profile.
  MODEL_PATH="$work/$model" HOST=127.0.0.1 PORT=0 "$SHIM" >>"$work/log" 2>&1 &
  pid=$!
  url=http://$(wait_addr "$work/log" $pid)
  until curl -sf "$url/readyz" >/dev/null; do sleep 0.1; done
  for rows in 1 100 1000; do
    : >"$work/log"
    "$REL/shim-load" load --url "$url" --rows "$rows" --csv "testdata/h2o3/$model.input.csv" \
      --connections 32 --duration "${TRAIN_SECONDS}s" --warmup 0s --json "$work/load.json" >/dev/null
  done
  kill -TERM $pid; wait $pid || true
  pid=
  echo "pgo: trained on $model" >&2
done
"$PROFDATA" merge -o "$DATA/merged.profdata" "$DATA"/*.profraw
echo "pgo: profile-guided build" >&2
build "-Cprofile-use=$DATA/merged.profdata"
echo "$SHIM"
