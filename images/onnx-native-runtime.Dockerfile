# The onnx-native-runtime image: the runtime shim serving `onnx` model directories
# (`mlflow-processor --model-type onnx`) natively on ONNX Runtime: no Python. The shim
# verifies MODEL_PATH, loads ONNX Runtime from ORT_DYLIB_PATH, checks the graph against
# the manifest and serves the H2O MLOps scoring REST API on PORT.
#
# Unlike the FROM scratch images, this one needs a userland: the shim is a glibc
# (dynamically linked) build, since a static musl binary cannot load a shared library,
# and libonnxruntime.so needs glibc (2.28 or later) and libstdc++. The base is the Debian
# one images/base/build.sh makes without a registry (toolkit-base-debian:bookworm:
# debootstrap minbase + ca-certificates); with a registry, --build-arg
# BASE_IMAGE=debian:bookworm-slim gives the same image.
#
# Built by images/build.sh (`make images`; images/images.txt: base debian, libc glibc),
# without network use: its context holds the glibc release build of runtime-shim and
# onnxruntime/ (libonnxruntime.so.<version>, LICENSE and ThirdPartyNotices.txt from the
# onnxruntime wheel on PyPI, pinned by version and sha256; images/onnx-native-runtime/stage.sh).
#
# Environment contract (docs/model-directory.md): MODEL_PATH (default /model, read-only),
# PORT (default 8080), and the variables labelled below: among them the endpoint security
# of /model/* (SCORING_PASSPHRASE[_HASH], OIDC_*; runtime-shim/README.md) and METRICS_PORT. The root filesystem can be
# read-only: nothing is written.
ARG BASE_IMAGE=toolkit-base-debian:bookworm
FROM ${BASE_IMAGE}

ARG VERSION
ARG REVISION
ARG SOURCE
ARG LICENSES
ARG ORT_VERSION=1.32.0

RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'nonroot:x:65532:' >>/etc/group

LABEL org.opencontainers.image.title="onnx-native-runtime" \
      org.opencontainers.image.description="Serves an onnx model directory at MODEL_PATH with the H2O MLOps scoring REST API on PORT, natively on ONNX Runtime (no Python)." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      artifact-processors.role="runtime" \
      artifact-processors.onnxruntime="${ORT_VERSION}" \
      artifact-processors.env.MODEL_PATH="the model directory a processor wrote (its TARGET_PATH); mount read-only" \
      artifact-processors.env.PORT="HTTP port (default 8080)" \
      artifact-processors.env.HOST="listen address (default 0.0.0.0)" \
      artifact-processors.env.MODEL_ID="id answered by /model/id and in responses (default: the manifest's id)" \
      artifact-processors.env.MODEL_TYPES="model types to accept (this image: onnx, as catalog.json says)" \
      artifact-processors.env.ORT_DYLIB_PATH="ONNX Runtime's shared library (default: the one in this image, /opt/onnxruntime/libonnxruntime.so.${ORT_VERSION})" \
      artifact-processors.env.ONNX_INTRA_OP_THREADS="threads of each ONNX Runtime session (default 0: one per physical core)" \
      artifact-processors.env.ONNX_SESSIONS="ONNX Runtime sessions, each scoring one request at a time (default 1)" \
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
      artifact-processors.probes="readiness GET /readyz, liveness GET /healthz" \
      artifact-processors.exit-codes="0 clean shutdown, 2 usage or configuration (no usable ONNX Runtime), 3 invalid model directory, 4 I/O or environment, 5 model type not served, 6 backend could not load the model (a graph that does not match the manifest)"

COPY onnxruntime/ /opt/onnxruntime/
COPY runtime-shim /usr/local/bin/runtime-shim

ENV MODEL_PATH=/model \
    PORT=8080 \
    MODEL_TYPES=onnx \
    ORT_DYLIB_PATH=/opt/onnxruntime/libonnxruntime.so.${ORT_VERSION}
EXPOSE 8080

USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/runtime-shim"]
