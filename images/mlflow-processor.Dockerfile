# The mlflow-processor image: the python/mlflow artifact processor (MLflow models).
#
# Built by images/build.sh (`make images`) from the static musl binary compiled on the
# host: no base image, only the binary and a passwd/group naming the non-root user 65532.
# The build context is a staging folder holding `mlflow-processor` and `etc/`
# (images/README.md; images/Dockerfile.multistage is the variant for builds that can
# pull a base image).
#
# Environment contract (docs/model-directory.md):
#   SOURCE_PATH  the artifact to process, a file or a folder: an MLflow model folder
#                or a zip, tar or tar.gz of one. Mount it read-only. Default /source.
#   TARGET_PATH  where the normalized model directory is written: absent (its parent
#                must exist) or an existing empty directory such as an emptyDir volume.
#                Default /target.
#   LOG_FORMAT   text (default) or json log lines on stderr; RUST_LOG sets the level.
# With no arguments it processes SOURCE_PATH into TARGET_PATH and exits 0 (success),
# 2 (usage or configuration), 3 (invalid, unsafe or unsupported artifact) or 4 (I/O or
# environment). `inspect` prints what the artifact is and writes nothing; `verify`
# re-checks a model directory:
#   podman run --rm --network=none --read-only -v "$PWD/artifact.zip:/source:ro" \
#     mlflow-processor:VERSION inspect
FROM scratch

ARG VERSION
ARG REVISION
ARG SOURCE
ARG LICENSES

LABEL org.opencontainers.image.title="mlflow-processor" \
      org.opencontainers.image.description="The python/mlflow artifact processor (MLflow models). Processes SOURCE_PATH into a normalized model directory at TARGET_PATH." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      artifact-processors.role="processor" \
      artifact-processors.env.SOURCE_PATH="the artifact to process (an MLflow model folder or a zip, tar or tar.gz of one); mount it read-only" \
      artifact-processors.env.TARGET_PATH="where the model directory is written: absent or an empty directory" \
      artifact-processors.env.MLFLOW_MODEL_TYPE="mlflow_pyfunc (default: the whole model folder) or onnx (the .onnx file, schema from its graph, for onnx-native-runtime)" \
      artifact-processors.env.MLFLOW_ALLOW_NO_SIGNATURE="true: accept a model without a signature (schema unknown)" \
      artifact-processors.env.MLFLOW_ALLOW_UNMAPPED_TYPES="true: leave columns without an MLOps type out of the schema (schema unknown)" \
      artifact-processors.env.LOG_FORMAT="text or json log lines on stderr" \
      artifact-processors.env.RUST_LOG="log level filter (default info)" \
      artifact-processors.exit-codes="0 ok, 2 usage or configuration, 3 invalid or unsupported artifact, 4 I/O or environment"

COPY etc/passwd etc/group /etc/
COPY mlflow-processor /usr/local/bin/mlflow-processor

ENV SOURCE_PATH=/source \
    TARGET_PATH=/target

USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mlflow-processor"]
