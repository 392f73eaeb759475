# shellcheck shell=bash
# Shared by images/build.sh and .ci/e2e-images.sh (sourced, from the repository root):
# the container engine, the workspace facts the labels carry, and images/images.txt.

die() { echo "${DIE_PREFIX:-images}: $*" >&2; exit 1; }

# podman or docker: CONTAINER_ENGINE, else podman when installed, else docker when its
# daemon answers.
container_engine() {
  if [ -n "${CONTAINER_ENGINE:-}" ]; then
    command -v "$CONTAINER_ENGINE" >/dev/null || die "CONTAINER_ENGINE=$CONTAINER_ENGINE is not installed"
    echo "$CONTAINER_ENGINE"
  elif command -v podman >/dev/null; then
    echo podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    echo docker
  else
    die "neither podman nor a running docker was found (on Debian/Ubuntu: .ci/setup-podman.sh)"
  fi
}

# `key = "value"` from the [workspace.package] table of the root Cargo.toml.
workspace_field() {
  awk -v key="$1" '
    /^\[/ { in_pkg = ($0 == "[workspace.package]"); next }
    in_pkg && $1 == key && $2 == "=" { v = $0; sub(/^[^=]*= *"/, "", v); sub(/".*$/, "", v); print v; exit }
  ' Cargo.toml
}

# The commit the images are built from, with -dirty when tracked files have changes.
source_revision() {
  local rev
  if rev=$(git rev-parse HEAD 2>/dev/null); then
    [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || rev="$rev-dirty"
    echo "$rev"
  else
    echo unknown
  fi
}

# Reads images/images.txt into the arrays IMAGES, PACKAGES, BINARIES, ROLES, BASES, LIBCS
# and MAX_MBS (same index). With arguments, only the images named (an unknown name is an
# error).
read_images() {
  IMAGES=() PACKAGES=() BINARIES=() ROLES=() BASES=() LIBCS=() MAX_MBS=()
  local image package binary role base libc max_mb extra a wanted
  while read -r image package binary role base libc max_mb extra; do
    case "$image" in '' | '#'*) continue ;; esac
    if [ -z "$max_mb" ] || [ -n "$extra" ]; then
      die "images/images.txt: the line for $image needs 7 fields: image package binary role base libc max_mb"
    fi
    case "$role" in processor | runtime) ;; *) die "images/images.txt: $image: role $role is not processor or runtime" ;; esac
    case "$base" in scratch | debian | python) ;; *) die "images/images.txt: $image: base $base is not scratch, debian or python" ;; esac
    case "$libc" in musl | glibc) ;; *) die "images/images.txt: $image: libc $libc is not musl or glibc" ;; esac
    [ "$base" != scratch ] || [ "$libc" = musl ] || die "images/images.txt: $image: a FROM scratch image needs the static musl build"
    case "$max_mb" in '' | *[!0-9]*) die "images/images.txt: $image: max_mb $max_mb is not a whole number" ;; esac
    [ -f "images/$image.Dockerfile" ] || die "images/images.txt lists $image but images/$image.Dockerfile is missing"
    if [ "$#" -gt 0 ]; then
      wanted=false
      for a in "$@"; do [ "$a" = "$image" ] && wanted=true; done
      $wanted || continue
    fi
    IMAGES+=("$image") PACKAGES+=("$package") BINARIES+=("$binary") ROLES+=("$role")
    BASES+=("$base") LIBCS+=("$libc") MAX_MBS+=("$max_mb")
  done <images/images.txt
  for a in "$@"; do
    printf '%s\n' "${IMAGES[@]}" | grep -qx -- "$a" || die "$a is not an image of images/images.txt"
  done
  [ "${#IMAGES[@]}" -gt 0 ] || die "no image selected"
}

# The default base image of a base kind (images.txt's base column); BASE_IMAGE_DEBIAN and
# BASE_IMAGE_PYTHON override them (e.g. debian:bookworm-slim, python:3.11-slim).
base_image_of() {
  case "$1" in
    debian) echo "${BASE_IMAGE_DEBIAN:-toolkit-base-debian:bookworm}" ;;
    python) echo "${BASE_IMAGE_PYTHON:-toolkit-base-python:3.11}" ;;
    *) die "no base image for $1" ;;
  esac
}
