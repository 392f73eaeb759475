#!/usr/bin/env bash
# Prepares the Python venv with kubernetes-validate (PyPI), which deploy/kubernetes-check's tests run on the core Kubernetes objects of deploy/,
# and prints its path on stdout.
#
#   export KUBERNETES_VALIDATE_VENV="$(.ci/setup-kubernetes-validate-venv.sh)"
#
# The packages are deploy/kubernetes-check/validate/requirements.txt. The venv lives outside the repository, under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/kubernetes-validate-venv-<key>
# (.ci/cached-venv.sh: keyed by the requirements and the Python version, reused once
# complete, built under a lock).
#
# Variables: KUBERNETES_VALIDATE_PYTHON (interpreter; default python3.11, else python3),
# KUBERNETES_VALIDATE_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=.ci/cached-venv.sh
. "$here/.ci/cached-venv.sh"
cached_venv kubernetes-validate "$here/deploy/kubernetes-check/validate/requirements.txt" \
  'import kubernetes_validate' KUBERNETES_VALIDATE
