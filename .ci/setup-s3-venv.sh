#!/usr/bin/env bash
# Prepares the Python venv with moto's S3 server (moto_server, PyPI moto[server]) that the object-storage tests start, and boto3 for bench/s3.sh's download-then-unpack side,
# and prints its path on stdout.
#
#   export S3_VENV="$(.ci/setup-s3-venv.sh)"
#
# The packages are tools/testkit/s3/requirements.txt. The venv lives outside the repository, under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/s3-venv-<key>
# where <key> is the sha256 of the requirements and the Python version: a change of
# either builds a new venv, an unchanged one is reused. It is used only once its
# `.complete` marker exists, and a lock keeps two runs from building it at once (the
# same scheme as setup-scoring-client-venv.sh, with its own requirements and key).
#
# Variables: S3_PYTHON (interpreter; default python3.11, else python3),
# S3_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reqs="$here/tools/testkit/s3/requirements.txt"
[ -f "$reqs" ] || { echo "setup-s3-venv: $reqs is missing" >&2; exit 1; }

python="${S3_PYTHON:-}"
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
command -v "$python" >/dev/null 2>&1 || {
  echo "setup-s3-venv: no Python interpreter '$python' (set S3_PYTHON)" >&2; exit 1; }
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

key="$(printf 'python %s\n%s\n' "$pyver" "$(cat "$reqs")" | sha256sum | cut -c1-16)"
root="${S3_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit}"
venv="$root/s3-venv-$key"
mkdir -p "$root"

exec 9>"$venv.lock"
flock 9
if [ -f "$venv/.complete" ] && "$venv/bin/python" -c 'import moto.server, boto3' >/dev/null 2>&1; then
  echo "setup-s3-venv: reusing $venv" >&2
  echo "$venv"
  exit 0
fi
rm -rf "$venv"
echo "setup-s3-venv: building $venv with $python ($pyver)" >&2
start=$SECONDS
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
cp "$reqs" "$venv/requirements.txt"
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  -r "$venv/requirements.txt" >&2
"$venv/bin/python" -c 'import moto.server, boto3' >&2
touch "$venv/.complete"
echo "setup-s3-venv: built $venv in $((SECONDS - start)) s" >&2
echo "$venv"
