# The dai-mojo-runtime image: the runtime shim serving `dai_mojo_pipeline` model
# directories (dai-mojo-processor's output) through H2O's C++ MOJO2 runtime, which PyPI
# carries as `daimojo` (2.9.2, with datatable, pandas and protobuf). The shim verifies
# MODEL_PATH, checks that a Driverless AI licence was provided, starts the image's scorer
# (/opt/toolkit/dai_scorer.py, from dai-mojo-runtime/) on a loopback port as its external
# DAI scorer (DAI_SCORER_COMMAND), checks the scorer's schema against the manifest and
# serves the H2O MLOps scoring REST API on PORT.
#
# No licence is in the image: it is provided at deploy time, as one of
#   - a file mounted at /license/license.sig (e.g. a Kubernetes Secret),
#   - a file mounted elsewhere, named by DRIVERLESS_AI_LICENSE_FILE,
#   - the key itself in DRIVERLESS_AI_LICENSE_KEY (from a Secret; never logged).
# Without any of them the runtime stops at start-up with exit code 9 and a message saying
# this (DAI_REQUIRE_LICENSE=true); a licence daimojo refuses stops it with exit code 6 and
# the same advice from the scorer.
#
# Built by images/build.sh (`make images`; images/images.txt: base python, libc musl):
# the base is the build argument BASE_IMAGE, default toolkit-base-python:3.11 that
# images/base/build.sh makes without a registry; with a registry,
# --build-arg BASE_IMAGE=python:3.11-slim. pip runs inside the build with the host's CA
# bundle mounted. Runs as uid 65532 with a read-only root filesystem; /tmp (HOME, TMPDIR)
# is the only writable path (an emptyDir in Kubernetes).
#
# Alternative: the Java mojo2-runtime. H2O's licensed mojo2-runtime.jar (with its local
# REST scorer) on a JRE base serves the same pipelines, including the TOML pipelines of
# Driverless AI 1.6 and older that the C++ runtime does not read: build FROM a JRE image
# (e.g. --build-arg BASE_IMAGE=eclipse-temurin:17-jre with your own Dockerfile), copy the
# jars, and set DAI_SCORER_COMMAND="java -Dmojo.path={pipeline} -Dserver.address={host}
# -Dserver.port={port} -jar /opt/scorer/local-rest-scorer.jar" (images/README.md).
ARG BASE_IMAGE=toolkit-base-python:3.11
FROM ${BASE_IMAGE}

COPY requirements.txt /opt/toolkit/
RUN set -eu; \
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off; \
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi; \
    if [ -d /var/cache/toolkit-pip ] && [ -w /var/cache/toolkit-pip ]; then export PIP_CACHE_DIR=/var/cache/toolkit-pip; else export PIP_NO_CACHE_DIR=1; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/python -m pip install --quiet -r /opt/toolkit/requirements.txt; \
    /opt/venv/bin/python -c 'import daimojo, datatable, numpy; print("daimojo", daimojo.__version__)'; \
    /opt/venv/bin/python -m pip freeze --all >/opt/toolkit/installed.txt; \
    echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >>/etc/passwd; \
    echo 'nonroot:x:65532:' >>/etc/group
COPY dai_scorer.py /opt/toolkit/
RUN /opt/venv/bin/python /opt/toolkit/dai_scorer.py --help >/dev/null

ARG VERSION
ARG REVISION
ARG SOURCE
ARG LICENSES

LABEL org.opencontainers.image.title="dai-mojo-runtime" \
      org.opencontainers.image.description="Serves a dai_mojo_pipeline model directory at MODEL_PATH with the H2O MLOps scoring REST API on PORT, through a scorer on H2O's C++ MOJO2 runtime (daimojo 2.9.2). Needs a Driverless AI licence at deploy time." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      artifact-processors.role="runtime" \
      artifact-processors.env.MODEL_PATH="the model directory a processor wrote (its TARGET_PATH); mount read-only" \
      artifact-processors.env.PORT="HTTP port (default 8080)" \
      artifact-processors.env.HOST="listen address (default 0.0.0.0)" \
      artifact-processors.env.MODEL_ID="id answered by /model/id and in responses (default: the manifest's id)" \
      artifact-processors.env.MODEL_TYPES="model types to accept (this image: dai_mojo_pipeline, as catalog.json says)" \
      artifact-processors.env.DRIVERLESS_AI_LICENSE_FILE="path of the mounted licence file (or mount it at /license/license.sig)" \
      artifact-processors.env.DRIVERLESS_AI_LICENSE_KEY="the licence key itself (from a Secret); never logged" \
      artifact-processors.env.DAI_REQUIRE_LICENSE="true (this image): stop at start-up (exit 9) when no licence was provided" \
      artifact-processors.env.DAI_SCORER_COMMAND="the external MOJO2 scorer's command line (default: the image's daimojo scorer)" \
      artifact-processors.env.DAI_SCORER_HEALTH_PATH="the scorer's route that answers once it can score (default /model/id)" \
      artifact-processors.env.CHILD_START_TIMEOUT_SECS="seconds the scorer may take to answer at start (default 300)" \
      artifact-processors.env.CHILD_STOP_GRACE_SECS="seconds the scorer gets after SIGTERM before SIGKILL (default 5)" \
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
      artifact-processors.volumes="/tmp: writable (emptyDir) when the root filesystem is read-only; /license: the licence (a Secret), read-only" \
      artifact-processors.probes="readiness GET /readyz, liveness GET /healthz" \
      artifact-processors.exit-codes="0 clean shutdown, 2 usage or configuration, 3 invalid model directory, 4 I/O or environment, 5 model type not served, 6 backend could not load the model (the scorer refused the licence or the pipeline, e.g. a TOML pipeline the C++ runtime does not read), 8 endpoint security misconfigured, 9 no Driverless AI licence provided"

COPY runtime-shim /usr/local/bin/runtime-shim

ENV MODEL_PATH=/model \
    PORT=8080 \
    MODEL_TYPES=dai_mojo_pipeline \
    DAI_SCORER_COMMAND="/opt/venv/bin/python /opt/toolkit/dai_scorer.py --pipeline {pipeline} --host {host} --port {port}" \
    DAI_REQUIRE_LICENSE=true \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8080

USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/runtime-shim"]
