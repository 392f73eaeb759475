#!/usr/bin/env bash
# Installs and configures podman so that `make images` and `make e2e-images` can run on a
# fresh Debian/Ubuntu CI machine. Idempotent: a second run changes nothing.
#
# - packages: podman, runc (the OCI runtime we configure; crun is not assumed), uidmap,
#   slirp4netns and fuse-overlayfs (rootless use);
# - /etc/containers/containers.conf: runtime = "runc" and file/process ulimits that the
#   machine's defaults would otherwise make podman refuse to set.
# - the musl Rust target the images are built for, and musl-gcc (musl-tools) for the C of
#   the runtime shim's musl build (mimalloc, runtime-shim/copy-routines).
#
# Needs root (or sudo) for apt and /etc; does nothing that needs a registry.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup-podman: must run as root (or with sudo available)" >&2
    exit 1
  fi
fi

need=()
for pkg in podman runc uidmap slirp4netns fuse-overlayfs musl-tools; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup-podman: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

conf=/etc/containers/containers.conf
marker="# managed by .ci/setup-podman.sh"
wanted="$marker
[containers]
default_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]

[engine]
runtime = \"runc\""
if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
  # Someone else's configuration: leave it and add ours as a drop-in (read after it).
  conf=/etc/containers/containers.conf.d/50-artifact-processors.conf
fi
if [ "$(cat "$conf" 2>/dev/null)" != "$wanted" ]; then
  echo "setup-podman: writing $conf"
  $SUDO mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$wanted" | $SUDO tee "$conf" >/dev/null
fi

if command -v rustup >/dev/null 2>&1; then
  rustup target list --installed | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl
fi

podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}' >/dev/null \
  || { echo "setup-podman: podman does not work after set-up (see podman info)" >&2; exit 1; }
echo "setup-podman: $(podman --version), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}'), storage $(podman info --format '{{.Store.GraphDriverName}}')"
