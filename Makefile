# CPO — the commands a user and CI need. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
CPO := $(or $(CARGO_TARGET_DIR),target)/debug/cpo
EXAMPLE_N ?= 100000
EXAMPLE_DIR := $(or $(CARGO_TARGET_DIR),target)/example

.PHONY: help build run test test-deps fmt fmt-check module-graph clippy nextest

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build every crate (debug)
	$(CARGO) build --workspace

run: build ## run the bundled example end to end on embedded defaults (local store ./cpo-data)
	@mkdir -p $(EXAMPLE_DIR)
	$(CPO) gen customers --n $(EXAMPLE_N) --seed 7 --out $(EXAMPLE_DIR)/customers.csv
	$(CPO) run --input $(EXAMPLE_DIR)/customers.csv --simulate-outcomes

test: fmt-check module-graph clippy lint-infra test-deps nextest ## everything CI checks

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

module-graph: ## no module cycle in any crate, and docs/architecture.md's module graph is current
	python3 scripts/module-graph.py --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-deps: ## install (cached) and start what the tests need: Azurite, moto (S3 + Step Functions), Chromium
	scripts/emulators.sh start
	@if [ -x scripts/ensure-chromium.sh ]; then scripts/ensure-chromium.sh; fi

# The emulators are stopped whatever the tests' outcome.
nextest:
	@rc=0; $(CARGO) nextest run --workspace --no-fail-fast || rc=$$?; scripts/emulators.sh stop || true; exit $$rc

.PHONY: test-llm
# The pipeline on a real llama.cpp server (docs/generate.md "Local model"). It runs the ignored test of the build
# `make test` made (same command and features, so nothing is compiled again) and stops only a server it started.
test-llm: ## the pipeline on a real llama.cpp server (llama-cpp-python built once and cached); run after `make test`
	@started=0; \
	if ! scripts/llama.sh running; then scripts/llama.sh start || exit 1; started=1; fi; \
	eval "$$(scripts/llama.sh env)"; rc=0; \
	$(CARGO) nextest run --workspace --no-fail-fast --run-ignored only -E 'binary_id(cpo-e2e::llm)' --no-capture \
		|| rc=$$?; \
	if [ $$started = 1 ]; then scripts/llama.sh stop || true; fi; exit $$rc

.PHONY: lint-infra package deploy
lint-infra: ## SAM → CloudFormation, cfn-lint (0 errors/warnings), asl-validator; and prove broken copies fail
	scripts/lint-infra.sh
	scripts/lint-infra.sh --self-test

LAMBDA_FUNCTIONS := trigger segment retrieve generate safety experiment report
package: ## build every function for arm64 with cargo-lambda into target/lambda/<name>/bootstrap.zip
	scripts/package.sh $(LAMBDA_FUNCTIONS)

deploy: package ## sam deploy (stage dev by default: make deploy STAGE=prod)
	cd infra && sam deploy --config-env $(or $(STAGE),dev)

.PHONY: bench bench-micro bench-season season
bench: ## end-to-end benchmark (250 … 10M customers; BENCH_SIZES="250 100000" to choose) + seasons + micro-benchmarks
	$(CARGO) build --release -p cpo -p cpo-trigger -p cpo-segment -p cpo-retrieve -p cpo-generate -p cpo-safety -p cpo-experiment -p cpo-report --bins
	python3 scripts/bench.py
	$(MAKE) bench-season
	$(MAKE) bench-micro

SEASON_SEEDS ?= 1-20
SEASON_CUSTOMERS ?= 100000
SEASON_WEEKS ?= 12
SEASON_DIR := $(or $(CARGO_TARGET_DIR),target)/bench/season
bench-season: ## thompson vs fixed over simulated seasons: 20 seeds × 12 weeks × 3 presets at 100k customers; prints each target met/missed
	$(CARGO) build --release -p cpo
	@mkdir -p $(SEASON_DIR)
	time $(or $(CARGO_TARGET_DIR),target)/release/cpo simulate season --store mem:// \
	  --weeks $(SEASON_WEEKS) --customers $(SEASON_CUSTOMERS) --seeds $(SEASON_SEEDS) \
	  --truth stationary decaying changing-winner --control-share 0.25 --floor 0.05 --out $(SEASON_DIR)

season: build ## a simulated season on the local store: 6 weeks × 5,000 customers, thompson vs fixed (stationary truth)
	$(CPO) simulate season --weeks 6 --customers 5000 --truth stationary

bench-micro: ## divan micro-benchmarks of the hot paths (CSV parse + RFM scoring, assignment hash, send list, statistics, rendering)
	$(CARGO) bench -p cpo-segment -p cpo-experiment -p cpo-retrieve -p cpo-report --benches
