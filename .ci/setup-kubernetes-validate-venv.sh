#!/usr/bin/env bash
# Prepares the Python venv with kubernetes-validate (PyPI), which deploy/kubernetes-check's tests run on the core Kubernetes objects of deploy/,
# and prints its path on stdout.
#
#   export KUBERNETES_VALIDATE_VENV="$(.ci/setup-kubernetes-validate-venv.sh)"
#
# The packages are deploy/kubernetes-check/validate/requirements.txt. The venv lives outside the repository, under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/kubernetes-validate-venv-<key>
# where <key> is the sha256 of the requirements and the Python version: a change of
# either builds a new venv, an unchanged one is reused. It is used only once its
# `.complete` marker exists, and a lock keeps two runs from building it at once (the
# same scheme as setup-scoring-client-venv.sh, with its own requirements and key).
#
# Variables: KUBERNETES_VALIDATE_PYTHON (interpreter; default python3.11, else python3),
# KUBERNETES_VALIDATE_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reqs="$here/deploy/kubernetes-check/validate/requirements.txt"
[ -f "$reqs" ] || { echo "setup-kubernetes-validate-venv: $reqs is missing" >&2; exit 1; }

python="${KUBERNETES_VALIDATE_PYTHON:-}"
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
command -v "$python" >/dev/null 2>&1 || {
  echo "setup-kubernetes-validate-venv: no Python interpreter '$python' (set KUBERNETES_VALIDATE_PYTHON)" >&2; exit 1; }
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

key="$(printf 'python %s\n%s\n' "$pyver" "$(cat "$reqs")" | sha256sum | cut -c1-16)"
root="${KUBERNETES_VALIDATE_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit}"
venv="$root/kubernetes-validate-venv-$key"
mkdir -p "$root"

exec 9>"$venv.lock"
flock 9
if [ -f "$venv/.complete" ] && "$venv/bin/python" -c 'import kubernetes_validate' >/dev/null 2>&1; then
  echo "setup-kubernetes-validate-venv: reusing $venv" >&2
  echo "$venv"
  exit 0
fi
rm -rf "$venv"
echo "setup-kubernetes-validate-venv: building $venv with $python ($pyver)" >&2
start=$SECONDS
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
cp "$reqs" "$venv/requirements.txt"
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  -r "$venv/requirements.txt" >&2
"$venv/bin/python" -c 'import kubernetes_validate' >&2
touch "$venv/.complete"
echo "setup-kubernetes-validate-venv: built $venv in $((SECONDS - start)) s" >&2
echo "$venv"
