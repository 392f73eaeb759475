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
# (.ci/cached-venv.sh: keyed by the requirements and the Python version, reused once
# complete, built under a lock).
#
# Variables: SCORING_CLIENT_PYTHON (interpreter; default python3.11, else python3),
# SCORING_CLIENT_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=.ci/cached-venv.sh
. "$here/.ci/cached-venv.sh"
cached_venv scoring-client "$here/runtime-shim/tests/scoring-client/requirements.txt" \
  'import h2o_mlops_scoring_client, numpy; assert numpy.__version__ < "2"' SCORING_CLIENT
