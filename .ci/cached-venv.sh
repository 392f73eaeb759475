# shellcheck shell=bash
# The one way the CI's Python venvs are made (sourced by the .ci/setup-*-venv.sh scripts,
# each of which names its requirements, its import check and its variables):
#
#   cached_venv NAME REQUIREMENTS IMPORT_CHECK VAR_PREFIX
#
# builds (or reuses) ${VAR_PREFIX_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit}/NAME-venv-<key>,
# where <key> is the sha256 of the requirements file and the Python version: a change of
# either builds a new venv, an unchanged one is reused. A venv is used only once its
# `.complete` marker exists and IMPORT_CHECK runs in it, and a lock keeps two runs from
# building it at once. The interpreter is ${VAR_PREFIX_PYTHON} (default python3.11, else
# python3). Progress goes to stderr; the venv's path is printed on stdout.
cached_venv() {
  local name=$1 reqs=$2 check=$3 prefix=$4 me="setup-$1-venv"
  [ -f "$reqs" ] || { echo "$me: $reqs is missing" >&2; return 1; }
  local pyvar="${prefix}_PYTHON" rootvar="${prefix}_VENV_ROOT"
  local python="${!pyvar:-}"
  if [ -z "$python" ]; then
    if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
  fi
  command -v "$python" >/dev/null 2>&1 || {
    echo "$me: no Python interpreter '$python' (set $pyvar)" >&2; return 1; }
  local pyver key root venv start
  pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  key="$(printf 'python %s\n%s\n' "$pyver" "$(cat "$reqs")" | sha256sum | cut -c1-16)"
  root="${!rootvar:-${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit}"
  venv="$root/$name-venv-$key"
  mkdir -p "$root"
  exec 9>"$venv.lock"
  flock 9
  if [ -f "$venv/.complete" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "$me: reusing $venv" >&2
    echo "$venv"
    return 0
  fi
  rm -rf "$venv"
  echo "$me: building $venv with $python ($pyver)" >&2
  start=$SECONDS
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  cp "$reqs" "$venv/requirements.txt"
  "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
    -r "$venv/requirements.txt" >&2
  "$venv/bin/python" -c "$check" >&2
  touch "$venv/.complete"
  echo "$me: built $venv in $((SECONDS - start)) s" >&2
  echo "$venv"
}
