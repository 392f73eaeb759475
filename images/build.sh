#!/usr/bin/env bash
# Builds the container images listed in images/images.txt (all of them, or the ones named
# on the command line): one static musl release build of every binary in a single cargo
# invocation, then one `FROM scratch` image per binary, built without network.
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
#   CARGO             cargo command (default cargo); CARGO_TARGET_DIR is honoured
#   CARGO_BUILD_FLAGS extra flags for cargo build (default --locked)
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

# --- the binaries ---------------------------------------------------------------------
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET_TRIPLE"; then
  die "the Rust target $TARGET_TRIPLE is not installed: rustup target add $TARGET_TRIPLE"
fi
for i in "${!IMAGES[@]}"; do
  if [ "${PACKAGES[$i]}" = runtime-shim ] && ! command -v musl-gcc >/dev/null; then
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
cargo_args=()
for i in "${!IMAGES[@]}"; do cargo_args+=(-p "${PACKAGES[$i]}" --bin "${BINARIES[$i]}"); done
echo "images: cargo build --release --target $TARGET_TRIPLE ${cargo_args[*]}"
# shellcheck disable=SC2086  # CARGO_BUILD_FLAGS is a list of flags
$CARGO build --release --target "$TARGET_TRIPLE" $CARGO_BUILD_FLAGS "${cargo_args[@]}"

target_dir=${CARGO_TARGET_DIR:-target}
bin_dir="$target_dir/$TARGET_TRIPLE/release"

# --- the images -----------------------------------------------------------------------
for i in "${!IMAGES[@]}"; do
  image=${IMAGES[$i]} binary=${BINARIES[$i]}
  [ -x "$bin_dir/$binary" ] || die "$image: $bin_dir/$binary was not built"
  ctx="$target_dir/images-context/$image"
  rm -rf "$ctx" && mkdir -p "$ctx/etc"
  cp images/etc/passwd images/etc/group "$ctx/etc/"
  cp "$bin_dir/$binary" "$ctx/$binary"
  ref="$IMAGE_PREFIX$image:$IMAGE_TAG"
  echo "images: $ENGINE build $ref"
  "$ENGINE" build --network=none --quiet \
    --file "images/$image.Dockerfile" \
    --build-arg "VERSION=$VERSION" \
    --build-arg "REVISION=$REVISION" \
    --build-arg "SOURCE=$SOURCE" \
    --build-arg "LICENSES=$LICENSES" \
    --tag "$ref" \
    "$ctx" >/dev/null
done

echo
printf '%-52s %12s\n' IMAGE SIZE
for image in "${IMAGES[@]}"; do
  ref="$IMAGE_PREFIX$image:$IMAGE_TAG"
  bytes=$("$ENGINE" image inspect --format '{{.Size}}' "$ref")
  printf '%-52s %9s MB  (%s bytes)\n' "$ref" "$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1000000 }')" "$bytes"
done
