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
# (.ci/cached-venv.sh: keyed by the requirements and the Python version, reused once
# complete, built under a lock).
#
# Variables: V2_CLIENTS_PYTHON (interpreter; default python3.11, else python3),
# V2_CLIENTS_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=.ci/cached-venv.sh
. "$here/.ci/cached-venv.sh"
cached_venv v2-clients "$here/runtime-shim/tests/v2-clients/requirements.txt" \
  'import tritonclient.http, kserve, numpy; from kserve import InferenceRESTClient, InferRequest' V2_CLIENTS
