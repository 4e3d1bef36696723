# Rapport — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Builds stay warm outside the clone.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/rapport/target
# Makes sure PostgreSQL and Redis are reachable and exports their URLs.
ENSURE_SERVICES := env=$$(scripts/ensure-services.sh) && eval "$$env"
BUF := tools/node_modules/.bin/buf

.PHONY: run test test-browser lint bench migrate seed-demo tools stop-services

## run: start PostgreSQL/Redis if needed, migrate, and serve every service (ctrl-c stops).
run:
	@scripts/run.sh

## test: every test (Rust unit + integration against real PostgreSQL and Redis, scripts, browser).
test:
	@$(ENSURE_SERVICES) && cargo test --workspace --locked
	@scripts/test-ensure-services.sh
	@$(MAKE) --no-print-directory test-browser

## test-browser: the gateway's gRPC-web from headless Chromium (tests/browser; installs Chromium if missing).
test-browser:
	@$(ENSURE_SERVICES) && cargo build --locked -p rapport && tests/browser/run.sh

## lint: rustfmt, clippy (warnings are errors), buf lint.
lint: $(BUF)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(BUF) lint

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
$(BUF): tools/package.json
	cd tools && npm ci --no-audit --no-fund
	touch $(BUF)
