# The runtime-shim image: the runtime container's entrypoint. It verifies the normalized
# model directory at MODEL_PATH (sizes and sha256 of every file), checks its model type and
# serves the H2O MLOps scoring REST API on PORT. This build scores h2o3_mojo models
# natively (no JVM); a directory of another model type is refused at start-up (exit 5).
#
# Built by images/build.sh (`make images`) from the static musl binary compiled on the
# host: no base image, only the binary and a passwd/group naming the non-root user 65532.
# The build context is a staging folder holding `runtime-shim` and `etc/` (images/README.md;
# images/Dockerfile.multistage is the variant for builds that can pull a base image).
#
# Environment contract (docs/model-directory.md):
#   MODEL_PATH   the model directory a processor wrote (its TARGET_PATH), mounted
#                read-only. Default /model.
#   PORT         the HTTP port (default 8080); HOST the address (default 0.0.0.0).
#   MODEL_ID     id answered by /model/id and in responses (default: the manifest's id).
#   MODEL_TYPES  model types to accept, comma-separated (this image: h2o3_mojo, as catalog.json says).
#   MAX_BODY_BYTES, REQUEST_TIMEOUT_SECS, HEADER_TIMEOUT_SECS, IDLE_TIMEOUT_SECS,
#                MAX_CONNECTIONS, SHUTDOWN_GRACE_SECS (default 25; SIGTERM drains
#                in-flight requests), WORKER_THREADS (default: one per CPU).
#   LOG_FORMAT   text (default) or json log lines on stderr; RUST_LOG sets the level.
#   SCORING_PASSPHRASE, SCORING_PASSPHRASE_HASH, OIDC_ISSUER, OIDC_AUDIENCE,
#   OIDC_JWKS_FILE, OIDC_CA_FILE, OIDC_ALLOW_HTTP, OIDC_JWKS_MIN_REFRESH_SECS,
#   OIDC_LEEWAY_SECS  endpoint security of /model/* (runtime-shim/README.md); none set:
#                open, with a warning at start-up. Secrets come from a Secret.
#   METRICS_PORT Prometheus /metrics alone on this port (default: /metrics on PORT).
# Endpoints: POST /model/score, GET /model/schema, /model/sample_request,
# /model/capabilities, /model/id, and the probes GET /readyz (readiness) and /healthz.
FROM scratch

ARG VERSION
ARG REVISION
ARG SOURCE
ARG LICENSES

LABEL org.opencontainers.image.title="runtime-shim" \
      org.opencontainers.image.description="Serves the normalized model directory at MODEL_PATH with the H2O MLOps scoring REST API on PORT (native H2O-3 MOJO scoring)." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      artifact-processors.role="runtime" \
      artifact-processors.env.MODEL_PATH="the model directory a processor wrote (its TARGET_PATH); mount read-only" \
      artifact-processors.env.PORT="HTTP port (default 8080)" \
      artifact-processors.env.HOST="listen address (default 0.0.0.0)" \
      artifact-processors.env.MODEL_ID="id answered by /model/id and in responses (default: the manifest's id)" \
      artifact-processors.env.MODEL_TYPES="model types to accept, comma-separated (this image: h2o3_mojo, as catalog.json says)" \
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
      artifact-processors.exit-codes="0 clean shutdown, 2 usage or configuration, 3 invalid model directory, 4 I/O or environment, 5 model type not served, 6 backend could not load the model, 8 endpoint security misconfigured"

COPY etc/passwd etc/group /etc/
COPY runtime-shim /usr/local/bin/runtime-shim

ENV MODEL_PATH=/model \
    PORT=8080 \
    MODEL_TYPES=h2o3_mojo
EXPOSE 8080

USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/runtime-shim"]
