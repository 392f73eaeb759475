# Artifact processor toolkit. `make demo` runs the main job on the bundled samples,
# `make test` runs every check CI runs.

CARGO ?= cargo
RELEASE := target/release
DEMO_OUT ?= target/demo
# Conformance corpus (real H2O artifacts); tests skip it when unset.
CONFORMANCE_DIR ?= $(wildcard $(abspath ../shared/conformance))
ifneq ($(CONFORMANCE_DIR),)
export CONFORMANCE_DIR
endif

# "yes" when the images' static build can be made here (bench/lib.sh's musl_build_ready:
# the rustup target and musl-gcc).
MUSL_READY := $(shell bash -c '. bench/lib.sh && musl_build_ready' && echo yes)

.PHONY: threaded musl-unit all build demo serve-demo test lint fmt clippy unit bench images e2e-images clean

all: build

build:
	$(CARGO) build --release --workspace --locked

## Process every bundled sample artifact and print each summary.
demo: build
	@rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	@set -e; for f in testdata/h2o3/*.zip; do \
	  n=$$(basename $$f .zip); \
	  echo "=== h2o3/mojo: $$f"; \
	  $(RELEASE)/h2o3-mojo-processor --source $$f --target $(DEMO_OUT)/h2o3-$$n; \
	  $(RELEASE)/h2o3-mojo-processor verify $(DEMO_OUT)/h2o3-$$n; \
	done
	@set -e; for f in testdata/mlflow/*.zip testdata/mlflow/*.tar.gz testdata/mlflow/custom_pyfunc testdata/mlflow/multi_output testdata/mlflow/lightgbm testdata/mlflow/statsmodels testdata/mlflow/v1/sklearn_1_29; do \
	  n=$$(basename $$f | tr . _); \
	  echo "=== python/mlflow: $$f"; \
	  $(RELEASE)/mlflow-processor --source $$f --target $(DEMO_OUT)/mlflow-$$n; \
	  $(RELEASE)/mlflow-processor verify $(DEMO_OUT)/mlflow-$$n; \
	done
	@echo "=== python/mlflow as onnx: testdata/mlflow/onnx"
	@$(RELEASE)/mlflow-processor --source testdata/mlflow/onnx --target $(DEMO_OUT)/mlflow-onnx --model-type onnx
	@$(RELEASE)/mlflow-processor verify $(DEMO_OUT)/mlflow-onnx
	@echo "=== python/mlflow as h2o3_mojo (served natively): testdata/mlflow/h2o_mojo_wrapped"
	@$(RELEASE)/mlflow-processor --source testdata/mlflow/h2o_mojo_wrapped --target $(DEMO_OUT)/mlflow-h2o3 --model-type h2o3_mojo
	@$(RELEASE)/mlflow-processor verify $(DEMO_OUT)/mlflow-h2o3
	@set -e; for f in testdata/onnx/regressor testdata/onnx/classifier_zipmap testdata/onnx/pipeline testdata/onnx/mlp; do \
	  n=$$(basename $$f); \
	  echo "=== python/mlflow as onnx (schema from the graph): $$f"; \
	  $(RELEASE)/mlflow-processor --source $$f --target $(DEMO_OUT)/onnx-$$n --model-type onnx; \
	  $(RELEASE)/mlflow-processor verify $(DEMO_OUT)/onnx-$$n; \
	done
	@set -e; if [ -n "$(CONFORMANCE_DIR)" ]; then for f in $(CONFORMANCE_DIR)/dai/*; do \
	  n=$$(basename $$f .mojo); \
	  echo "=== dai/mojo_pipeline: $$f"; \
	  $(RELEASE)/dai-mojo-processor --source $$f --target $(DEMO_OUT)/dai-$$n; \
	  $(RELEASE)/dai-mojo-processor verify $(DEMO_OUT)/dai-$$n; \
	done; else echo "(no CONFORMANCE_DIR: DAI pipelines cannot be generated, so none are bundled; skipping them)"; fi
	@echo "demo: model directories are in $(DEMO_OUT)"

## Process a MOJO, serve it with the runtime shim, call the scoring API, stop it.
serve-demo: build
	@rm -rf $(DEMO_OUT)/serve && mkdir -p $(DEMO_OUT) && $(RELEASE)/h2o3-mojo-processor --source testdata/h2o3/gbm_binomial.zip --target $(DEMO_OUT)/serve >/dev/null
	@MODEL_PATH=$(DEMO_OUT)/serve HOST=127.0.0.1 PORT=18080 $(RELEASE)/runtime-shim & pid=$$!; \
	 until curl -sf localhost:18080/readyz >/dev/null; do sleep 0.1; done; \
	 echo '$$ curl localhost:18080/model/schema'; curl -s localhost:18080/model/schema; echo; \
	 echo '$$ curl localhost:18080/model/score -d ...'; \
	 curl -s localhost:18080/model/score -H 'content-type: application/json' \
	   -d '{"fields":["x1","x2","x3","color"],"rows":[["-0.624","3.409","2.0","blue"]]}'; echo; \
	 kill -TERM $$pid; wait $$pid
	@echo '$$ runtime-shim score --model-path ... --input testdata/h2o3/gbm_binomial.input.csv | head -3'
	@$(RELEASE)/runtime-shim score --model-path $(DEMO_OUT)/serve --input testdata/h2o3/gbm_binomial.input.csv | head -3

## Everything CI checks: formatting, lints, unit and integration tests (with the
## conformance corpus when CONFORMANCE_DIR exists), then the processors' tests again with
## every archive read by the threaded readers (ARTIFACT_PARALLEL_MIN_BYTES=0; by default
## only sources over 4 MiB are, and test artifacts are small), then the static musl
## build's memcpy and memmove (runtime-shim/copy-routines) for that target, when it and
## musl-gcc are installed (.ci/setup-podman.sh installs both; otherwise skipped, saying so).
test: fmt clippy unit threaded musl-unit

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	@echo "conformance corpus: $(if $(CONFORMANCE_DIR),$(CONFORMANCE_DIR),not found (those tests are skipped))"
	$(CARGO) test --workspace --locked

threaded:
	ARTIFACT_PARALLEL_MIN_BYTES=0 $(CARGO) test --locked -p artifact-core -p h2o3-mojo \
	  -p mlflow-model -p dai-mojo -p fuzz-targets

musl-unit:
ifeq ($(MUSL_READY),yes)
	$(CARGO) test --locked --target x86_64-unknown-linux-musl -p copy-routines
else
	@echo "(no musl target or musl-gcc: the static build's copy routines were not tested; skipped)"
endif

## Speed and memory benchmarks (not run by `make test`). BENCH_SIZES in MiB.
## SCORE_MODELS: testdata MOJOs for the scoring benchmark (default: bench/score.sh's list).
## bench/load.sh: the runtime shim under load (1 and 100 rows, 32 connections, shim-load),
## the host build, then the images' static musl build when its target and musl-gcc are
## installed (.ci/setup-podman.sh installs both).
BENCH_SIZES ?= 256 1024
SCORE_MODELS ?=
## ONNX_MODELS: testdata/onnx models for bench/onnx.sh (native ONNX runtime vs MLflow).
ONNX_MODELS ?=
## bench/serve.sh: the shim's REST path against h2o-genmodel in a JIT-warmed Java HTTP
## server on the same MOJOs (1, 100 and 1000 rows per request, 32 connections, shim-load),
## the shim being the images' static musl build, profile-guided as the images build it
## (bench/pgo.sh; PGO=0: the plain one), when its target and musl-gcc are installed, else
## the host build;
## SERVE_MODELS: testdata MOJOs for it (default: bench/serve.sh's list). Its environment
## (ROWS_SOURCE=distinct, PIN=1, ROUNDS, ...) is described at the top of the script.
SERVE_MODELS ?=
## bench/proxy.sh: what the shim costs in front of `mlflow models serve` (the same MLflow
## model served alone and behind the shim, 1 and 100 rows per request, 16 connections,
## shim-load; goal: under 10% of MLflow's req/s and p99); skipped, saying so, when
## MLFLOW_VENV is unset. PROXY_MODELS: testdata/mlflow models (default: sklearn_pipeline
## xgboost).
PROXY_MODELS ?=
## bench/s3.sh: an MLflow zip of S3_BENCH_MIB MiB processed from a local S3 server (moto)
## against download-then-unpack (boto3 + zipfile + hashlib, KServe's storage-initializer way).
S3_BENCH_MIB ?= 1024
bench: build
	bench/run.sh $(BENCH_SIZES)
	$(CARGO) build --release --locked -p h2o3-scorer --example score_csv
	bench/score.sh $(SCORE_MODELS)
	CARGO="$(CARGO)" bench/load.sh
	CARGO="$(CARGO)" bench/serve.sh $(SERVE_MODELS)
	bench/onnx.sh $(ONNX_MODELS)
	CARGO="$(CARGO)" bench/proxy.sh $(PROXY_MODELS)
	bench/s3.sh $(S3_BENCH_MIB)
ifeq ($(MUSL_READY),yes)
	CARGO="$(CARGO)" SHIM_TARGET=musl WRK=0 bench/load.sh
else
	@echo "(no musl target or musl-gcc: the images' build of the shim is not benchmarked by bench/load.sh)"
endif

## Container images (images/images.txt): FROM scratch around static musl builds, and the
## runtimes on the Debian/Python bases images/base/build.sh makes (podman, or docker when
## podman is absent). IMAGES names some of them (default: all); IMAGE_PREFIX (e.g.
## registry.example.com/ml/), IMAGE_TAG (default: the version), BASE_IMAGE_DEBIAN,
## BASE_IMAGE_PYTHON, EXTRA_BUILD_ARGS. The musl runtimes' shim is a profile-guided build
## (bench/pgo.sh: two more builds of the shim and a training run); PGO=0 builds it plainly.
IMAGES ?=
images:
	CARGO="$(CARGO)" images/build.sh $(IMAGES)

## End-to-end test of the images: every composition, each processor image on test
## artifacts (--network=none --read-only), then each runtime image scoring the reference.
e2e-images: images
	.ci/e2e-images.sh

clean:
	$(CARGO) clean
	rm -rf $(DEMO_OUT)
