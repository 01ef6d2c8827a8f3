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
