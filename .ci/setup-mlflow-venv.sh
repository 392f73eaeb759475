#!/usr/bin/env bash
# Prepares the Python venv that serves MLflow models in the runtime-shim tests
# (`mlflow models serve --env-manager local`) and prints its path on stdout.
#
#   export MLFLOW_VENV="$(.ci/setup-mlflow-venv.sh)"
#
# The packages are testdata/mlflow/requirements.txt (the environment that wrote the
# sample models), with one substitution: `xgboost==X` becomes `xgboost-cpu==X`, the
# same library and version without the CUDA build and its ~600 MB nvidia-nccl-cu12
# dependency (the xgboost sample scores identically with both; runtime-shim/README.md).
#
# The venv lives outside the repository, under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/mlflow-venv-<key>
# where <key> is the sha256 of the effective requirements and the Python version, so a
# change of either builds a new venv and an unchanged one is reused as is. pip's own
# download cache (~/.cache/pip, or PIP_CACHE_DIR) is left on, so a rebuild downloads
# nothing it already has. A venv is only used once its `.complete` marker exists (a
# venv cannot be built elsewhere and moved: its scripts hold absolute paths), and a
# lock keeps two runs from building the same venv at once.
#
# Variables: MLFLOW_PYTHON (interpreter; default python3.11, else python3),
# MLFLOW_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reqs="$here/testdata/mlflow/requirements.txt"
[ -f "$reqs" ] || { echo "setup-mlflow-venv: $reqs is missing" >&2; exit 1; }

python="${MLFLOW_PYTHON:-}"
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
command -v "$python" >/dev/null 2>&1 || {
  echo "setup-mlflow-venv: no Python interpreter '$python' (set MLFLOW_PYTHON)" >&2; exit 1; }
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

effective="$(sed -E 's/^xgboost==/xgboost-cpu==/' "$reqs")"
key="$(printf 'python %s\n%s\n' "$pyver" "$effective" | sha256sum | cut -c1-16)"
root="${MLFLOW_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit}"
venv="$root/mlflow-venv-$key"
mkdir -p "$root"

exec 9>"$venv.lock"
flock 9
if [ -f "$venv/.complete" ] && "$venv/bin/python" -c 'import mlflow' >/dev/null 2>&1; then
  echo "setup-mlflow-venv: reusing $venv" >&2
  echo "$venv"
  exit 0
fi
rm -rf "$venv"
echo "setup-mlflow-venv: building $venv with $python ($pyver)" >&2
start=$SECONDS
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
printf '%s\n' "$effective" >"$venv/requirements.txt"
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  -r "$venv/requirements.txt" >&2
# The scoring server must start from this venv alone.
"$venv/bin/python" -c 'import mlflow, sklearn, xgboost, lightgbm, uvicorn' >&2
if [ ! -x "$venv/bin/mlflow" ] || [ ! -x "$venv/bin/uvicorn" ]; then
  echo "setup-mlflow-venv: $venv has no bin/mlflow or bin/uvicorn" >&2; exit 1
fi
touch "$venv/.complete"
echo "setup-mlflow-venv: built $venv in $((SECONDS - start)) s" >&2
echo "$venv"
