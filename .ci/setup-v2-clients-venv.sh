#!/usr/bin/env bash
# Prepares the Python venv with the Open Inference Protocol v2 clients (tritonclient's HTTP
# client and the KServe SDK's InferenceRESTClient) that the runtime-shim tests run against
# the real shim, and prints its path on stdout.
#
#   export V2_CLIENTS_VENV="$(.ci/setup-v2-clients-venv.sh)"
#
# The packages are runtime-shim/tests/v2-clients/requirements.txt (pip resolves
# tritonclient[http] and kserve together on Python 3.11). The venv lives outside the
# repository, under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/v2-clients-venv-<key>
# where <key> is the sha256 of the requirements and the Python version: a change of
# either builds a new venv, an unchanged one is reused. It is used only once its
# `.complete` marker exists, and a lock keeps two runs from building it at once (the
# same scheme as setup-scoring-client-venv.sh, with its own requirements and key).
#
# Variables: V2_CLIENTS_PYTHON (interpreter; default python3.11, else python3),
# V2_CLIENTS_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reqs="$here/runtime-shim/tests/v2-clients/requirements.txt"
[ -f "$reqs" ] || { echo "setup-v2-clients-venv: $reqs is missing" >&2; exit 1; }

python="${V2_CLIENTS_PYTHON:-}"
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
command -v "$python" >/dev/null 2>&1 || {
  echo "setup-v2-clients-venv: no Python interpreter '$python' (set V2_CLIENTS_PYTHON)" >&2; exit 1; }
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

key="$(printf 'python %s\n%s\n' "$pyver" "$(cat "$reqs")" | sha256sum | cut -c1-16)"
root="${V2_CLIENTS_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit}"
venv="$root/v2-clients-venv-$key"
mkdir -p "$root"

check='import tritonclient.http, kserve, numpy; from kserve import InferenceRESTClient, InferRequest'
exec 9>"$venv.lock"
flock 9
if [ -f "$venv/.complete" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
  echo "setup-v2-clients-venv: reusing $venv" >&2
  echo "$venv"
  exit 0
fi
rm -rf "$venv"
echo "setup-v2-clients-venv: building $venv with $python ($pyver)" >&2
start=$SECONDS
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
cp "$reqs" "$venv/requirements.txt"
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  -r "$venv/requirements.txt" >&2
"$venv/bin/python" -c "$check" >&2
touch "$venv/.complete"
echo "setup-v2-clients-venv: built $venv in $((SECONDS - start)) s" >&2
echo "$venv"
