#!/usr/bin/env bash
# Makes the base images of the images that are not FROM scratch, without a registry:
#
#   toolkit-base-debian:bookworm  `debootstrap --variant=minbase bookworm` against Debian's
#                                 mirror + ca-certificates, imported with `<engine> import`
#                                 (glibc, libstdc++: what libonnxruntime needs)
#   toolkit-base-python:3.11      the Debian base + python3 (bookworm's is 3.11) and
#                                 python3-venv (images/base/python.Dockerfile)
#
#   images/base/build.sh                # both
#   images/base/build.sh debian         # one (python makes debian first)
#
# Each image carries the label artifact-processors.base-key: a hash of this script and
# python.Dockerfile. An image whose key matches is kept (a rerun takes a second); the
# rootfs tarball is cached as ${BASE_CACHE_DIR}/debian-bookworm-<key>.tar, so that a
# removed image is re-imported without debootstrap. Users with a registry skip all this:
# every Dockerfile takes its base as the build argument BASE_IMAGE (debian:bookworm-slim,
# python:3.11-slim).
#
# Environment: CONTAINER_ENGINE (podman or docker), DEBIAN_MIRROR (default
# http://deb.debian.org/debian), BASE_CACHE_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/bases). Needs root (or sudo) for
# debootstrap, which is installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

DIE_PREFIX=base
# shellcheck source=images/common.sh
. images/common.sh
ENGINE=$(container_engine)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CACHE=${BASE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/bases}
DEBIAN_REF=toolkit-base-debian:$SUITE
PYTHON_REF=toolkit-base-python:3.11
KEY=$(cat images/base/build.sh images/base/python.Dockerfile | sha256sum | cut -c1-16)
KEY_LABEL=artifact-processors.base-key

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "debootstrap needs root (or sudo)"
  SUDO=sudo
fi

want=("$@")
[ "${#want[@]}" -gt 0 ] || want=(debian python)

current() { # REF: the image exists and was made by this version of the script
  [ "$("$ENGINE" image inspect --format "{{index .Config.Labels \"$KEY_LABEL\"}}" "$1" 2>/dev/null)" = "$KEY" ]
}

debian() {
  if current "$DEBIAN_REF"; then
    echo "base: $DEBIAN_REF is current (key $KEY)"
    return
  fi
  local tarball="$CACHE/debian-$SUITE-$KEY.tar"
  if [ ! -s "$tarball" ]; then
    if ! command -v debootstrap >/dev/null; then
      echo "base: installing debootstrap"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    mkdir -p "$CACHE"
    local rootfs
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/base-rootfs.XXXXXX")
    echo "base: debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes)"
    local started=$SECONDS
    $SUDO debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
      || { tail -n 30 "$rootfs.log" >&2; $SUDO rm -rf "$rootfs" "$rootfs.log"; die "debootstrap failed"; }
    # What an image does not need: package caches and lists, documentation.
    $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
      "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
      "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/debootstrap
    $SUDO tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
    $SUDO chown "$(id -u):$(id -g)" "$tarball.part"
    mv "$tarball.part" "$tarball"
    $SUDO rm -rf "$rootfs" "$rootfs.log"
    echo "base: rootfs cached as $tarball ($((SECONDS - started)) s)"
  fi
  "$ENGINE" import \
    --change "LABEL $KEY_LABEL=$KEY" \
    --change 'LABEL org.opencontainers.image.title=toolkit-base-debian' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$DEBIAN_REF" >/dev/null
  echo "base: imported $DEBIAN_REF"
}

python() {
  if current "$PYTHON_REF"; then
    echo "base: $PYTHON_REF is current (key $KEY)"
    return
  fi
  debian
  echo "base: $ENGINE build $PYTHON_REF (apt-get install python3 python3-venv)"
  "$ENGINE" build --quiet --file images/base/python.Dockerfile \
    --build-arg "BASE_IMAGE=$DEBIAN_REF" --label "$KEY_LABEL=$KEY" \
    --tag "$PYTHON_REF" images/base >/dev/null
  echo "base: built $PYTHON_REF"
}

for w in "${want[@]}"; do
  case "$w" in
    debian) debian ;;
    python) python ;;
    *) die "unknown base $w (debian or python)" ;;
  esac
done
