#!/usr/bin/env bash
# Prepares the Python venv with moto's S3 server (moto_server, PyPI moto[server]) that the object-storage tests start, and boto3 for bench/s3.sh's download-then-unpack side,
# and prints its path on stdout.
#
#   export S3_VENV="$(.ci/setup-s3-venv.sh)"
#
# The packages are tools/testkit/s3/requirements.txt. The venv lives outside the repository, under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/artifact-toolkit/s3-venv-<key>
# (.ci/cached-venv.sh: keyed by the requirements and the Python version, reused once
# complete, built under a lock).
#
# Variables: S3_PYTHON (interpreter; default python3.11, else python3),
# S3_VENV_ROOT (parent folder; default the cache path above).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=.ci/cached-venv.sh
. "$here/.ci/cached-venv.sh"
cached_venv s3 "$here/tools/testkit/s3/requirements.txt" \
  'import moto.server, boto3' S3
