# The mlflow-pyfunc-runtime image: the runtime shim serving `mlflow_pyfunc` model
# directories (mlflow-processor's default output) in front of MLflow's own scoring server.
# The shim verifies MODEL_PATH, compares the model's Python and requirements with this
# image's (see "When a model's environment differs" below), starts `mlflow models serve
# --env-manager local` on a loopback port as a supervised child, waits for its /ping and
# serves the H2O MLOps scoring REST API on PORT, translating requests to /invocations.
#
# Python 3.11 (the base's), mlflow and the libraries of the flavors H2O MLOps supports
# that install here (scikit-learn, xgboost, lightgbm, statsmodels, onnx, onnxruntime), in
# the venv /opt/venv, pinned as testdata/mlflow/requirements.txt (mlflow-pyfunc-runtime/
# requirements.txt and no-deps.txt; /opt/toolkit/installed.txt lists what was installed).
#
# Built by images/build.sh (`make images`; images/images.txt: base python, libc musl):
# the base is the build argument BASE_IMAGE, default toolkit-base-python:3.11 that
# images/base/build.sh makes without a registry (debootstrap bookworm + python3); with a
# registry, --build-arg BASE_IMAGE=python:3.11-slim. pip runs inside the build: podman
# build mounts the host's CA bundle at /etc/ssl/certs/ca-certificates.crt (and a pip cache
# at /var/cache/toolkit-pip). The shim is the static musl binary of the runtime-shim image.
#
# Heavier flavors, same Dockerfile (not built in CI; several GB):
#   make images IMAGES=mlflow-pyfunc-runtime IMAGE_TAG=0.1.0-torch \
#     EXTRA_BUILD_ARGS="--build-arg FLAVORS=torch"            # or FLAVORS="torch tensorflow"
# FLAVORS names files of mlflow-pyfunc-runtime/flavors/ (torch.txt, tensorflow.txt);
# PIP_EXTRA_INDEX_URL (build argument) adds an index, e.g. PyTorch's CPU wheels.
#
# Runs as uid 65532 with a read-only root filesystem: the only writable path is /tmp
# (HOME and TMPDIR; MLflow's and Python's scratch files, and MLFLOW_INSTALL_DIR), an
# emptyDir in Kubernetes (podman run --read-only mounts a tmpfs there by itself).
#
# When a model's environment differs from the image's (the processor records the
# model's python_version and requirements in model.json):
#   - Python major.minor: a warning at start-up; MLFLOW_REQUIRE_PYTHON_MATCH=true refuses
#     to start (exit code 6).
#   - requirements (name and version specifier of each line): each one this image does
#     not satisfy is named in a warning; MLFLOW_REQUIRE_REQUIREMENTS_MATCH=true refuses to
#     start (exit code 6); MLFLOW_INSTALL_REQUIREMENTS=true installs the unmet ones at
#     start with pip into MLFLOW_INSTALL_DIR (default /tmp/mlflow-requirements, on the
#     writable volume), put before the image's packages on the scoring server's
#     PYTHONPATH. That needs a package index the pod can reach (PIP_INDEX_URL,
#     PIP_FIND_LINKS, ...) and time (CHILD_START_TIMEOUT_SECS); it is off by default, so a
#     model never downloads code unless the deployer asks for it.
ARG BASE_IMAGE=toolkit-base-python:3.11
FROM ${BASE_IMAGE}

ARG FLAVORS=""
ARG PIP_EXTRA_INDEX_URL=""

COPY requirements.txt no-deps.txt /opt/toolkit/
COPY flavors/ /opt/toolkit/flavors/
RUN set -eu; \
    if ! ldconfig -p | grep -q 'libgomp\.so\.1' && command -v apt-get >/dev/null; then \
      apt-get update -qq; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libgomp1 >/dev/null; \
      apt-get clean; rm -rf /var/lib/apt/lists/* /var/log/*.log /var/cache/debconf/*-old /var/lib/dpkg/*-old; \
    fi; \
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off; \
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi; \
    if [ -d /var/cache/toolkit-pip ] && [ -w /var/cache/toolkit-pip ]; then export PIP_CACHE_DIR=/var/cache/toolkit-pip; else export PIP_NO_CACHE_DIR=1; fi; \
    if [ -n "$PIP_EXTRA_INDEX_URL" ]; then export PIP_EXTRA_INDEX_URL; fi; \
    python3 -m venv /opt/venv; \
    set -- -r /opt/toolkit/requirements.txt; \
    for f in $FLAVORS; do \
      [ -f "/opt/toolkit/flavors/$f.txt" ] || { echo "FLAVORS: no flavors/$f.txt" >&2; exit 1; }; \
      set -- "$@" -r "/opt/toolkit/flavors/$f.txt"; \
    done; \
    /opt/venv/bin/python -m pip install --quiet "$@"; \
    /opt/venv/bin/python -m pip install --quiet --no-deps -r /opt/toolkit/no-deps.txt; \
    /opt/venv/bin/python -c 'import mlflow.pyfunc.scoring_server, sklearn, xgboost, lightgbm, statsmodels, onnx, onnxruntime'; \
    /opt/venv/bin/python -m pip freeze --all >/opt/toolkit/installed.txt; \
    echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >>/etc/passwd; \
    echo 'nonroot:x:65532:' >>/etc/group

ARG VERSION
ARG REVISION
ARG SOURCE
ARG LICENSES

LABEL org.opencontainers.image.title="mlflow-pyfunc-runtime" \
      org.opencontainers.image.description="Serves an mlflow_pyfunc model directory at MODEL_PATH with the H2O MLOps scoring REST API on PORT, through MLflow's own scoring server (Python 3.11, mlflow, scikit-learn, xgboost, lightgbm, statsmodels, onnx, onnxruntime)." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      artifact-processors.role="runtime" \
      artifact-processors.flavors="${FLAVORS}" \
      artifact-processors.env.MODEL_PATH="the model directory a processor wrote (its TARGET_PATH); mount read-only" \
      artifact-processors.env.PORT="HTTP port (default 8080)" \
      artifact-processors.env.HOST="listen address (default 0.0.0.0)" \
      artifact-processors.env.MODEL_ID="id answered by /model/id and in responses (default: the manifest's id)" \
      artifact-processors.env.MODEL_TYPES="model types to accept (this image: mlflow_pyfunc, as catalog.json says)" \
      artifact-processors.env.MLFLOW_SERVE_COMMAND="the scoring server's command line (default: /opt/venv/bin/mlflow models serve ... --env-manager local)" \
      artifact-processors.env.MLFLOW_PYTHON="the interpreter compared with the model's Python and requirements (default /opt/venv/bin/python)" \
      artifact-processors.env.MLFLOW_REQUIRE_PYTHON_MATCH="true: refuse (exit 6) a model saved with another Python major.minor instead of warning" \
      artifact-processors.env.MLFLOW_REQUIRE_REQUIREMENTS_MATCH="true: refuse (exit 6) a model whose requirements this image does not satisfy instead of warning" \
      artifact-processors.env.MLFLOW_INSTALL_REQUIREMENTS="true: install the requirements this image does not satisfy into MLFLOW_INSTALL_DIR at start (needs a package index; PIP_* variables apply)" \
      artifact-processors.env.MLFLOW_INSTALL_DIR="writable folder for MLFLOW_INSTALL_REQUIREMENTS (default /tmp/mlflow-requirements)" \
      artifact-processors.env.PIP_INDEX_URL="package index for MLFLOW_INSTALL_REQUIREMENTS (pip's own variable; PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX too)" \
      artifact-processors.env.CHILD_START_TIMEOUT_SECS="seconds the scoring server may take to answer /ping, and an install at start to finish (default 300)" \
      artifact-processors.env.CHILD_STOP_GRACE_SECS="seconds the scoring server gets after SIGTERM before SIGKILL (default 5)" \
      artifact-processors.env.MAX_BODY_BYTES="largest request body (default 64M)" \
      artifact-processors.env.REQUEST_TIMEOUT_SECS="seconds before a request is answered 503 (default 60)" \
      artifact-processors.env.HEADER_TIMEOUT_SECS="seconds a request's line and headers have to arrive before a 408 (default 10)" \
      artifact-processors.env.IDLE_TIMEOUT_SECS="seconds a kept-alive connection may stay idle (default 75; keep it above a load balancer's)" \
      artifact-processors.env.MAX_CONNECTIONS="connections served at once; more wait in the listen backlog (default 1024)" \
      artifact-processors.env.SHUTDOWN_GRACE_SECS="seconds in-flight requests get after SIGTERM (default 25)" \
      artifact-processors.env.WORKER_THREADS="server threads (default: one per CPU)" \
      artifact-processors.env.SCORING_PASSPHRASE="endpoint security: one plain passphrase clients send as Authorization: Bearer (from a Secret)" \
      artifact-processors.env.SCORING_PASSPHRASE_HASH="endpoint security: PBKDF2 (PHC) or bcrypt hashes of passphrases, whitespace-separated; runtime-shim hash-passphrase makes one (from a Secret)" \
      artifact-processors.env.OIDC_ISSUER="endpoint security: accept OIDC tokens of this issuer (needs OIDC_AUDIENCE)" \
      artifact-processors.env.OIDC_AUDIENCE="endpoint security: audiences a token must hold one of, comma-separated" \
      artifact-processors.env.OIDC_JWKS_FILE="endpoint security: the issuer's keys (JWKS) from this file instead of its discovery document" \
      artifact-processors.env.OIDC_CA_FILE="endpoint security: PEM CA bundle for the issuer's HTTPS (default: Mozilla's roots)" \
      artifact-processors.env.OIDC_ALLOW_HTTP="endpoint security: allow a plain-http issuer off loopback (default false)" \
      artifact-processors.env.OIDC_JWKS_MIN_REFRESH_SECS="endpoint security: an unknown key id fetches the keys at most this often (default 30)" \
      artifact-processors.env.OIDC_LEEWAY_SECS="endpoint security: clock skew allowed on exp and nbf (default 30)" \
      artifact-processors.env.METRICS_PORT="serve Prometheus /metrics alone on this port, open (default: on PORT, behind the endpoint security)" \
      artifact-processors.env.LOG_FORMAT="text or json log lines on stderr" \
      artifact-processors.env.RUST_LOG="log level filter (default info)" \
      artifact-processors.volumes="/tmp: writable (emptyDir) when the root filesystem is read-only" \
      artifact-processors.probes="readiness GET /readyz, liveness GET /healthz" \
      artifact-processors.exit-codes="0 clean shutdown, 2 usage or configuration, 3 invalid model directory, 4 I/O or environment, 5 model type not served, 6 backend could not load the model (the scoring server did not start, a refused Python or requirements mismatch, a failed install), 8 endpoint security misconfigured"

COPY runtime-shim /usr/local/bin/runtime-shim

ENV MODEL_PATH=/model \
    PORT=8080 \
    MODEL_TYPES=mlflow_pyfunc \
    MLFLOW_SERVE_COMMAND="/opt/venv/bin/mlflow models serve -m {model} --env-manager local -h {host} -p {port}" \
    MLFLOW_PYTHON=/opt/venv/bin/python \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true
EXPOSE 8080

USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/runtime-shim"]
