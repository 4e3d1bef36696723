# Rapport — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Builds stay warm outside the clone.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/rapport/target
# Tests mostly wait on PostgreSQL and the network, so more run at once than
# there are cores (each crate's tests are one binary; see ARCHITECTURE.md).
TEST_THREADS ?= 4
# Makes sure PostgreSQL and Redis are reachable and exports their URLs.
ENSURE_SERVICES := env=$$(scripts/ensure-services.sh) && eval "$$env"
BUF := tools/node_modules/.bin/buf

.PHONY: soak run test test-browser test-erp test-deploy test-chart k8s image image-build-stage lint fuzz bench migrate seed-demo tools stop-services

# The image's tag: the workspace version.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)

## run: start PostgreSQL/Redis if needed, migrate, and serve every service (ctrl-c stops).
run:
	@scripts/run.sh

## test: every test (Rust unit + integration against real PostgreSQL and Redis, scripts, deployment, browser).
test:
	@$(ENSURE_SERVICES) && cargo test --workspace --locked -- --test-threads=$(TEST_THREADS)
	@scripts/test-ensure-services.sh
	@$(MAKE) --no-print-directory test-deploy
	@$(MAKE) --no-print-directory test-browser
	@$(MAKE) --no-print-directory test-erp

## test-erp: a Python grpcio ERP client books won deals' orders through the gateway, crashing and resuming (tests/clients/python).
test-erp:
	@$(ENSURE_SERVICES) && cargo build --locked -p rapport && tests/clients/python/run.sh

## test-browser: the gateway's gRPC-web from headless Chromium (tests/browser; installs Chromium if missing).
test-browser:
	@$(ENSURE_SERVICES) && cargo build --locked -p rapport && tests/browser/run.sh

## test-deploy: the Helm chart and k8s/ (test-chart), and the image's build stage (image-build-stage).
test-deploy: test-chart image-build-stage

## test-chart: lint, render and validate helm/rapport; k8s/ must equal a fresh render (helm/tests).
test-chart:
	@helm/tests/run.sh

## k8s: regenerate k8s/ from the chart's default values.
k8s:
	@helm/tests/run.sh --write-k8s

## image-build-stage: the Dockerfile's cargo command on the Docker build context, without Docker.
image-build-stage:
	@scripts/image-build-stage.sh

## image: build the container image rapport:$(VERSION) (needs a Docker engine).
image:
	@if docker info >/dev/null 2>&1; then \
		docker build -t rapport:$(VERSION) .; \
	else \
		echo "make image: skipped, no Docker engine answers here ('docker info' failed)."; \
		echo "  'make image-build-stage' runs the image's cargo build on its build context without Docker."; \
	fi

## lint: rustfmt, clippy (warnings are errors), buf lint, and buf breaking against the previous commit (a released contract cannot break silently).
lint: $(BUF)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(BUF) lint
	@if git rev-parse --verify --quiet HEAD~1 >/dev/null; then \
		echo "$(BUF) breaking --against '.git#ref=HEAD~1'"; \
		$(BUF) breaking --against '.git#ref=HEAD~1'; \
	else \
		echo "buf breaking: no previous commit to compare with"; \
	fi

## fuzz: property tests over the decoders facing the network (filters, page tokens, money, gRPC framing), FUZZ_CASES inputs each.
FUZZ_CASES ?= 100000
fuzz:
	@PROPTEST_CASES=$(FUZZ_CASES) cargo test --locked -p rapport-kit -p rapport-gateway --test it fuzz -- --test-threads=2

## soak: the connection-recycling test as a long soak: SOAK_SECONDS (300) of mixed calls through the gateway, backend connections recycled every SOAK_CONNECTION_AGE (60s); zero failed calls.
SOAK_SECONDS ?= 300
SOAK_CONNECTION_AGE ?= 60s
soak:
	@$(ENSURE_SERVICES) && SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CONNECTION_AGE=$(SOAK_CONNECTION_AGE) \
		cargo test --locked -p rapport-gateway --test it recycled_backend_connections_fail_no_call -- --nocapture

## bench: load-test the services and write BENCHMARKS.md.
bench:
	@$(ENSURE_SERVICES) && cargo run --release --locked -p rapport-bench

## migrate: apply every service's migrations.
migrate:
	@$(ENSURE_SERVICES) && cargo run --locked -p rapport -- migrate all

## seed-demo: load demo data into the running stack (`make run` in another terminal).
seed-demo:
	cargo run --locked -p rapport -- seed-demo

## stop-services: stop the private PostgreSQL/Redis started under .data/ (if any).
stop-services:
	scripts/ensure-services.sh stop

tools: $(BUF)
# `npm ci` refuses a lock file whose optional per-platform buf packages the
# registry does not list (as the one this machine reaches); `npm install`
# then installs the same locked version.
$(BUF): tools/package.json
	cd tools && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; }
	touch $(BUF)
