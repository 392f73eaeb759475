#!/usr/bin/env bash
# Builds the container images listed in images/images.txt (all of them, or the ones named
# on the command line):
#
# 1. the bases the selected images need (images/base/build.sh: debootstrap + import,
#    cached; skipped when BASE_IMAGE_DEBIAN / BASE_IMAGE_PYTHON name another base);
# 2. one staging folder per image under target/images-context/<image>/: etc/ (passwd and
#    group of the non-root user 65532), the files of images/<image>/ when that folder
#    exists, and what images/<image>/stage.sh puts there (it may also write build-args,
#    KEY=VALUE lines passed as --build-arg);
# 3. in the background, the layers of the images on a base up to their binary (their pip
#    installs), from the staging folder with an empty stand-in binary, so that downloads
#    overlap the compilation (tagged toolkit-layers-<image>:cache);
# 4. the binaries: one static musl release build of every binary the musl images need in
#    a single cargo invocation, but the runtime shim, which is a profile-guided build
#    (PGO below), and the host's glibc release build for the glibc ones (the
#    onnx-native-runtime: a static binary cannot load libonnxruntime);
# 5. `<engine> build` of images/<image>.Dockerfile with the binary added: FROM scratch
#    images with --network=none; the others with the base as BASE_IMAGE, the host's CA
#    bundle mounted at /etc/ssl/certs/ca-certificates.crt (pip inside the build, TLS is
#    intercepted here) and a pip cache mounted at /var/cache/toolkit-pip (podman; docker
#    builds without), finding the layers of step 3 in the cache.
#
#   images/build.sh                          # every image
#   images/build.sh h2o3-mojo-processor      # some of them
#
# Environment:
#   CONTAINER_ENGINE  podman or docker (default: podman when installed, else docker when
#                     its daemon answers)
#   IMAGE_PREFIX      prepended to every image name, e.g. registry.example.com/ml/ (default
#                     none: podman stores the images as localhost/<name>)
#   IMAGE_TAG         the tag (default: the workspace version from Cargo.toml)
#   BASE_IMAGE_DEBIAN base of the debian images (default toolkit-base-debian:bookworm)
#   BASE_IMAGE_PYTHON base of the python images (default toolkit-base-python:3.11)
#   EXTRA_BUILD_ARGS  more flags for every `<engine> build`, e.g. "--build-arg FLAVORS=torch"
#   CA_BUNDLE         the CA bundle mounted into non-scratch builds (default
#                     /etc/ssl/certs/ca-certificates.crt when it exists)
#   PIP_CACHE         the pip cache folder mounted into them (default
#                     ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/pip; "none": no cache)
#   CARGO             cargo command (default cargo); CARGO_TARGET_DIR is honoured
#   CARGO_BUILD_FLAGS extra flags for cargo build (default --locked)
#   PGO               1 (default): the static runtime shim of the musl images is a
#                     profile-guided build (bench/pgo.sh: built instrumented, trained on
#                     ten testdata MOJOs, built again, in target/pgo; needs rustup's
#                     llvm-tools); 0: the plain release build (two builds and a training
#                     run fewer: CI builds so)
#
# Labels: org.opencontainers.image.{title,version,source,revision,licenses} from
# Cargo.toml's [workspace.package] and `git rev-parse HEAD` (with -dirty when the
# working tree has changes).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_TRIPLE=x86_64-unknown-linux-musl
CARGO=${CARGO:-cargo}
CARGO_BUILD_FLAGS=${CARGO_BUILD_FLAGS---locked}
IMAGE_PREFIX=${IMAGE_PREFIX:-}

# shellcheck source=images/common.sh
. images/common.sh
ENGINE=$(container_engine)

VERSION=$(workspace_field version)
SOURCE=$(workspace_field repository)
LICENSES=$(workspace_field license)
[ -n "$VERSION" ] || die "no version in [workspace.package] of Cargo.toml"
[ -n "$SOURCE" ] || die "no repository in [workspace.package] of Cargo.toml"
[ -n "$LICENSES" ] || die "no license in [workspace.package] of Cargo.toml"
IMAGE_TAG=${IMAGE_TAG:-$VERSION}
REVISION=$(source_revision)

read_images "$@"

# --- the bases --------------------------------------------------------------------------
own_bases=()
for kind in debian python; do
  used=false
  for i in "${!IMAGES[@]}"; do [ "${BASES[$i]}" = "$kind" ] && used=true; done
  $used || continue
  case "$(base_image_of "$kind")" in toolkit-base-*) own_bases+=("$kind") ;; esac
done
if [ "${#own_bases[@]}" -gt 0 ]; then
  CONTAINER_ENGINE=$ENGINE images/base/build.sh "${own_bases[@]}"
fi
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PIP_CACHE=${PIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/pip}
network_flags=()
if [ "$ENGINE" = podman ]; then
  [ -f "$CA_BUNDLE" ] && network_flags+=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
  if [ "$PIP_CACHE" != none ]; then
    mkdir -p "$PIP_CACHE"
    network_flags+=(--volume "$(cd "$PIP_CACHE" && pwd):/var/cache/toolkit-pip")
  fi
fi

# --- the build contexts (all but the binary) ---------------------------------------------
target_dir=${CARGO_TARGET_DIR:-target}
for i in "${!IMAGES[@]}"; do
  image=${IMAGES[$i]}
  ctx="$target_dir/images-context/$image"
  rm -rf "$ctx" && mkdir -p "$ctx/etc"
  cp images/etc/passwd images/etc/group "$ctx/etc/"
  if [ -d "images/$image" ]; then
    cp -R "images/$image/." "$ctx/"
    rm -f "$ctx/stage.sh"
  fi
  if [ -x "images/$image/stage.sh" ]; then
    echo "images: images/$image/stage.sh $ctx"
    "images/$image/stage.sh" "$ctx"
  fi
done

# shellcheck disable=SC2206  # EXTRA_BUILD_ARGS is a list of flags
extra=(${EXTRA_BUILD_ARGS:-})
# flags_of INDEX: the build flags of an image (its context must be staged).
flags_of() {
  local i=$1 image=${IMAGES[$1]} base=${BASES[$1]} ctx="$target_dir/images-context/${IMAGES[$1]}" kv
  flags=(--file "images/$image.Dockerfile")
  if [ "$base" = scratch ]; then
    flags+=(--network=none)
  else
    flags+=(--build-arg "BASE_IMAGE=$(base_image_of "$base")" "${network_flags[@]}")
  fi
  if [ -f "$ctx/build-args" ]; then
    while IFS= read -r kv; do [ -n "$kv" ] && flags+=(--build-arg "$kv"); done <"$ctx/build-args"
  fi
  flags+=("${extra[@]}" --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION"
    --build-arg "SOURCE=$SOURCE" --build-arg "LICENSES=$LICENSES")
}

# --- the layers below the binary, while cargo compiles -----------------------------------
# The images on a base install their packages (pip) before they copy the binary: build
# those layers now, in the background, from the context with an empty stand-in for the
# binary (tagged toolkit-layers-<image>:cache), so that the network-bound installs overlap
# the CPU-bound compilation; the real build below then finds them in the layer cache.
early_pids=()
for i in "${!IMAGES[@]}"; do
  [ "${BASES[$i]}" != scratch ] || continue
  image=${IMAGES[$i]}
  early="$target_dir/images-context/$image.early"
  rm -rf "$early" && cp -R "$target_dir/images-context/$image" "$early"
  : >"$early/${BINARIES[$i]}"
  flags_of "$i"
  echo "images: $ENGINE build of $image's layers in the background (log: $early.log)"
  "$ENGINE" build "${flags[@]}" --tag "toolkit-layers-$image:cache" "$early" >"$early.log" 2>&1 &
  early_pids+=("$!")
done

# --- the binaries ---------------------------------------------------------------------
needs_musl=false needs_glibc=false
for i in "${!IMAGES[@]}"; do
  case "${LIBCS[$i]}" in musl) needs_musl=true ;; glibc) needs_glibc=true ;; esac
done
if $needs_musl && command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET_TRIPLE"; then
  die "the Rust target $TARGET_TRIPLE is not installed: rustup target add $TARGET_TRIPLE"
fi
for i in "${!IMAGES[@]}"; do
  if [ "${PACKAGES[$i]}" = runtime-shim ] && [ "${LIBCS[$i]}" = musl ] && ! command -v musl-gcc >/dev/null; then
    die "musl-gcc is not installed (Debian/Ubuntu: apt-get install musl-tools); the runtime shim's musl build compiles mimalloc with it"
  fi
done
missing=()
for i in "${!IMAGES[@]}"; do
  $CARGO pkgid --quiet "${PACKAGES[$i]}" >/dev/null 2>&1 \
    || missing+=("${IMAGES[$i]} needs package ${PACKAGES[$i]} (binary ${BINARIES[$i]}), which is not a member of this workspace")
done
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'images: %s\n' "${missing[@]}" >&2
  exit 1
fi
PGO=${PGO:-1}
case "$PGO" in 0 | 1) ;; *) die "PGO is 1 (a profile-guided runtime shim, the default) or 0, not $PGO" ;; esac
# Whether the musl images' runtime shim is the profile-guided build (then bench/pgo.sh
# makes it, and the plain musl build leaves it out).
pgo_shim_of() { # INDEX
  [ "$PGO" = 1 ] && [ "${BINARIES[$1]}" = runtime-shim ] && [ "${LIBCS[$1]}" = musl ]
}
cargo_for() { # LIBC [cargo flags]: one cargo build of every binary the LIBC images need
  local libc=$1 args=() seen=" " i
  shift
  for i in "${!IMAGES[@]}"; do
    [ "${LIBCS[$i]}" = "$libc" ] || continue
    ! pgo_shim_of "$i" || continue
    case "$seen" in *" ${PACKAGES[$i]}/${BINARIES[$i]} "*) continue ;; esac
    seen="$seen${PACKAGES[$i]}/${BINARIES[$i]} "
    args+=(-p "${PACKAGES[$i]}" --bin "${BINARIES[$i]}")
  done
  [ "${#args[@]}" -gt 0 ] || return 0
  echo "images: cargo build --release $* ${args[*]}"
  # shellcheck disable=SC2086  # CARGO_BUILD_FLAGS is a list of flags
  $CARGO build --release "$@" $CARGO_BUILD_FLAGS "${args[@]}"
}
$needs_musl && cargo_for musl --target "$TARGET_TRIPLE"
pgo_shim=
for i in "${!IMAGES[@]}"; do
  pgo_shim_of "$i" || continue
  echo "images: PGO=1: bench/pgo.sh for $TARGET_TRIPLE (PGO=0: the plain build)"
  pgo_shim=$(PGO_TRIPLE=$TARGET_TRIPLE PGO_TARGET_DIR="$target_dir/pgo" CARGO="$CARGO" bench/pgo.sh) \
    || die "the profile-guided build of the runtime shim failed (see above); PGO=0 builds the images without it"
  break
done
$needs_glibc && cargo_for glibc
bin_dir_of() {
  case "$1" in
    musl) echo "$target_dir/$TARGET_TRIPLE/release" ;;
    glibc) echo "$target_dir/release" ;;
  esac
}

for pid in "${early_pids[@]}"; do
  wait "$pid" || die "building the layers of an image failed: see $target_dir/images-context/*.early.log"
done

# --- the images -----------------------------------------------------------------------
for i in "${!IMAGES[@]}"; do
  image=${IMAGES[$i]} binary=${BINARIES[$i]} base=${BASES[$i]}
  built=$(bin_dir_of "${LIBCS[$i]}")/$binary
  ! pgo_shim_of "$i" || built=$pgo_shim
  [ -x "$built" ] || die "$image: $built was not built"
  ctx="$target_dir/images-context/$image"
  cp "$built" "$ctx/$binary"
  flags_of "$i"
  ref="$IMAGE_PREFIX$image:$IMAGE_TAG"
  echo "images: $ENGINE build $ref${base:+ (base: $base)}"
  started=$SECONDS
  log="$target_dir/images-context/$image.build.log"
  if ! "$ENGINE" build "${flags[@]}" --tag "$ref" "$ctx" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "$image: $ENGINE build failed (whole log: $log)"
  fi
  [ "$base" = scratch ] || echo "images: built $ref in $((SECONDS - started)) s"
done

echo
printf '%-52s %12s\n' IMAGE SIZE
for image in "${IMAGES[@]}"; do
  ref="$IMAGE_PREFIX$image:$IMAGE_TAG"
  bytes=$("$ENGINE" image inspect --format '{{.Size}}' "$ref")
  printf '%-52s %9s MB  (%s bytes)\n' "$ref" "$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1000000 }')" "$bytes"
done
