# clw — make targets. Each section is owned by the part of the tool it drives.
CARGO ?= cargo
.PHONY: build test run-server

build:
	$(CARGO) build --workspace --release

test:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

run-server:
	$(CARGO) run --release -p clw-auth -- --config profiles/fixed.json

# --- server (clw-auth) ---
.PHONY: metrics-check
# /metrics through Prometheus's own linter; installs promtool when missing.
metrics-check:
	@command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus)
	CLW_REQUIRE_PROMTOOL=1 $(CARGO) test -p clw-auth --test promtool -- --nocapture

.PHONY: bench-cache
# Single-thread insert+get pairs/s and RSS bytes per session, 1M sessions of 232 B.
bench-cache:
	$(CARGO) bench -p clw-auth --bench cache

# --- load generator (clw-cli) ---
.PHONY: bench-loadgen
CLW_BIN ?= $(or $(CARGO_TARGET_DIR),target)/release
BENCH_DURATION ?= 10
BENCH_USERS ?= 50

# clw-cli vs wrk (Debian's package, installed when missing) on the same
# clw-auth GET /ready: requests/s, ratio and each one's peak RSS.
bench-loadgen:
	@command -v wrk >/dev/null || (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null))
	@command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	loadgen/bench/bench-loadgen.sh $(CLW_BIN)/clw-cli $(CLW_BIN)/clw-auth $(BENCH_DURATION) $(BENCH_USERS)

# --- memory limits, leak reproduction and verification ---

# --- reports ---
.PHONY: report-check compare

# Browser check of the HTML report (installs Debian's chromium when missing;
# not part of `make test`).
report-check:
	CARGO=$(CARGO) report/scripts/report-check.sh

# Side by side: the leaky run against the fixed one (reports/compare/), and
# reports/index.html listing the runs present.
compare:
	$(CARGO) run --release -p clw-cli -- report reports/leak-repro reports/fix-verify --out reports/compare --index reports
