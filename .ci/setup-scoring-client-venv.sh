#!/usr/bin/env bash
# Prepares the Python venv with H2O's mini-batch scoring client (h2o-mlops-scoring-client)
# that the runtime-shim tests run against the real shim, and prints its path on stdout.
#
#   export SCORING_CLIENT_VENV="$(.ci/setup-scoring-client-venv.sh)"
#
# The packages are runtime-shim/tests/scoring-client/requirements.txt (the client 0.2.1b1
# with numpy < 2, which its pinned pandas 1.5 needs). The venv lives outside the
# repository, under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/scoring-client-venv-<key>
# where <key> is the sha256 of the requirements and the Python version: a change of
# either builds a new venv, an unchanged one is reused. It is used only once its
# `.complete` marker exists, and a lock keeps two runs from building it at once (the
# same scheme as setup-mlflow-venv.sh, with its own requirements and key).
#
# Variables: SCORING_CLIENT_PYTHON (interpreter; default python3.11, else python3),
# SCORING_CLIENT_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reqs="$here/runtime-shim/tests/scoring-client/requirements.txt"
[ -f "$reqs" ] || { echo "setup-scoring-client-venv: $reqs is missing" >&2; exit 1; }

python="${SCORING_CLIENT_PYTHON:-}"
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
command -v "$python" >/dev/null 2>&1 || {
  echo "setup-scoring-client-venv: no Python interpreter '$python' (set SCORING_CLIENT_PYTHON)" >&2; exit 1; }
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

key="$(printf 'python %s\n%s\n' "$pyver" "$(cat "$reqs")" | sha256sum | cut -c1-16)"
root="${SCORING_CLIENT_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit}"
venv="$root/scoring-client-venv-$key"
mkdir -p "$root"

exec 9>"$venv.lock"
flock 9
if [ -f "$venv/.complete" ] && "$venv/bin/python" -c 'import h2o_mlops_scoring_client' >/dev/null 2>&1; then
  echo "setup-scoring-client-venv: reusing $venv" >&2
  echo "$venv"
  exit 0
fi
rm -rf "$venv"
echo "setup-scoring-client-venv: building $venv with $python ($pyver)" >&2
start=$SECONDS
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
cp "$reqs" "$venv/requirements.txt"
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  -r "$venv/requirements.txt" >&2
"$venv/bin/python" -c 'import h2o_mlops_scoring_client, numpy; assert numpy.__version__ < "2"' >&2
touch "$venv/.complete"
echo "setup-scoring-client-venv: built $venv in $((SECONDS - start)) s" >&2
echo "$venv"
