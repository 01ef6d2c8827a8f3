# clw — make targets. Each section is owned by the part of the tool it drives.
CARGO ?= cargo
.PHONY: build test lint run-server

build:
	$(CARGO) build --workspace --release

# Prometheus and promtool (Debian's `prometheus`) for the tests that scrape
# clw-cli's --metrics-listen and that read a load test's memory through a
# Prometheus server (loadgen/tests/it/memory_sources.rs); installed when missing (those tests say they
# skip where it cannot be).
NEED_PROMETHEUS = command -v prometheus >/dev/null && command -v promtool >/dev/null \
  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
  || echo "prometheus could not be installed: the tests that need it skip"

test:
	@$(NEED_PROMETHEUS)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

run-server:
	$(CARGO) run --release -p clw-auth -- --config profiles/fixed.json

# --- server (clw-auth) ---
.PHONY: metrics-check
# /metrics through Prometheus's own linter (clw-auth's, and clw-cli's
# --metrics-listen during a load test, which a real Prometheus also
# scrapes); installs Debian's prometheus when missing, and fails instead of
# skipping without it.
metrics-check:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus)
	CLW_REQUIRE_PROMTOOL=1 $(CARGO) test -p clw-auth --test it promtool:: -- --nocapture
	CLW_REQUIRE_PROMTOOL=1 CLW_REQUIRE_PROMETHEUS=1 $(CARGO) test -p clw-cli --test it live_metrics:: -- --nocapture

.PHONY: bench-idle
# A new login's latency while 10,000 idle connections hold every slot of
# max_connections (4,096): median and worst, target 1 s. The bench raises
# its own open-files soft limit to the hard one (ulimit -Hn).
bench-idle:
	$(CARGO) bench -p clw-auth --bench idle

.PHONY: bench-cache
# Single-thread insert+get pairs/s and RSS bytes per session, 1M sessions of 232 B.
bench-cache:
	$(CARGO) bench -p clw-auth --bench cache

.PHONY: bench-heap-profile
HEAP_BENCH_DURATION ?= 10
HEAP_BENCH_ROUNDS ?= 3
# The cost of jemalloc heap profiling: requests/s and the server's peak
# RSS with authentication.memory.heap_profile on and off, alternately,
# under the same wrk login load (wrk is Debian's, installed when missing).
bench-heap-profile:
	@command -v wrk >/dev/null || (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null))
	$(CARGO) build --release -p clw-auth --bins
	auth-server/bench/bench-heap-profile.sh $(or $(CARGO_TARGET_DIR),target)/release/clw-auth $(HEAP_BENCH_DURATION) 50 $(HEAP_BENCH_ROUNDS)

.PHONY: profile-heap
# Exact allocation sites with dhat: clw-auth built with --features
# dhat-heap (into target/dhat, beside the normal build) under a short
# login-storm (MODE=leaky|fixed, LEAK=<kind>), stopped with SIGTERM by
# clw-cli, which leaves reports/profile-heap/dhat-heap.json; then the top
# sites at the heap's peak and at exit. Open the file in DHAT's viewer:
# dh_view.html from Debian's valgrind package (see README).
MODE ?= leaky
PROFILE_DURATION ?= 15
PROFILE_PORT ?= 38445
DHAT_TARGET ?= target/dhat
profile-heap:
	$(CARGO) build --release -p clw-cli --bins
	$(CARGO) build --release -p clw-auth --bins --features dhat-heap --target-dir $(DHAT_TARGET)
	rm -rf reports/profile-heap
	$(if $(LEAK),CLAW_SESSION_CACHE_LEAK=$(LEAK)) CLAW_AUTH_SHUTDOWN_GRACE=1s $(MEM_BIN)/clw-cli auth load-test \
	  --scenario scenarios/login-storm.toml --concurrent-users 20 \
	  --duration $(PROFILE_DURATION) --target http://127.0.0.1:$(PROFILE_PORT) \
	  --spawn-server "$(DHAT_TARGET)/release/clw-auth --config profiles/$(MODE).json --port $(PROFILE_PORT) --dhat-file reports/profile-heap/dhat-heap.json" \
	  --memory-limit $(MEMORY_LIMIT) --on-server-exit stop --out reports/profile-heap || true
	@test -s reports/profile-heap/dhat-heap.json || { echo "no reports/profile-heap/dhat-heap.json: the server did not shut down gracefully (see reports/profile-heap/)"; exit 1; }
	$(MEM_BIN)/clw-cli dhat reports/profile-heap/dhat-heap.json --top 10

# --- load generator (clw-cli) ---
.PHONY: bench-loadgen
CLW_BIN ?= $(or $(CARGO_TARGET_DIR),target)/release
BENCH_DURATION ?= 10
BENCH_USERS ?= 50

# clw-cli vs wrk (Debian's package, installed when missing) on the same
# clw-auth GET /ready: requests/s, ratio, peak RSS and CPU per request
# (medians over BENCH_ROUNDS rounds, order alternating).
bench-loadgen:
	@command -v wrk >/dev/null || (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null))
	@command -v /usr/bin/time >/dev/null || (apt-get install -y time >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y time >/dev/null))
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	loadgen/bench/bench-loadgen.sh $(CLW_BIN)/clw-cli $(CLW_BIN)/clw-auth $(BENCH_DURATION) $(BENCH_USERS)

# Debian's nginx (the server of bench-jar and bench-peer), /usr/bin/time
# and jq, installed when missing.
NEED_BENCH_TOOLS = command -v nginx >/dev/null || (apt-get install -y nginx >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y nginx >/dev/null)); \
  command -v /usr/bin/time >/dev/null || (apt-get install -y time >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y time >/dev/null)); \
  command -v jq >/dev/null || (apt-get install -y jq >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y jq >/dev/null))

.PHONY: bench-jar bench-peer
JAR_DURATION ?= 10
JAR_USERS ?= 20
JAR_ROUNDS ?= 3
# The cost of the cookie jar: clw-cli's CPU per request with [http]
# cookies on against off, same nginx (two Set-Cookie on every answer),
# JAR_ROUNDS rounds each, alternating; medians and the ratio (target
# <= 1.10), checked against nginx's access log (Cookie headers received
# with the jar on, none with it off). Prints and writes reports/bench-jar.txt.
bench-jar:
	@$(NEED_BENCH_TOOLS)
	$(CARGO) build --release -p clw-cli --bins
	loadgen/bench/bench-jar.sh $(CLW_BIN)/clw-cli $(JAR_DURATION) $(JAR_USERS) $(JAR_ROUNDS) reports/bench-jar.txt

LOCUST_VERSION ?= 2.47.0
BENCH_VENV ?= $(or $(CARGO_TARGET_DIR),target)/bench-venv
PEER_DURATION ?= 20
PEER_USERS ?= 20
# Where services/express-session and services/locust live; the nginx
# flow stands in while they are missing (PEER_SERVER=nginx|express forces one).
SERVICES ?= services
PEER_SERVER ?= auto
# clw-cli beside Locust (PyPI locust==LOCUST_VERSION, FastHttpUser, one
# process, in a venv at BENCH_VENV) running the same cookie flow on the
# same server: requests/s and client CPU per request of Locust, clw-cli
# --threads 1 and clw-cli's default threads; each must have ~0 failures.
# Prints and writes reports/bench-peer.txt.
bench-peer:
	@$(NEED_BENCH_TOOLS)
	@$(BENCH_VENV)/bin/locust --version 2>/dev/null | grep -q "^locust $(LOCUST_VERSION) " \
	  || { python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -q "locust==$(LOCUST_VERSION)"; }
	$(CARGO) build --release -p clw-cli --bins
	SERVICES=$(SERVICES) PEER_SERVER=$(PEER_SERVER) loadgen/bench/bench-peer.sh $(CLW_BIN)/clw-cli $(BENCH_VENV)/bin/locust $(PEER_DURATION) $(PEER_USERS) reports/bench-peer.txt

# clw-cli against wrk over https on the same TLS clw-auth (a throw-away
# self-signed certificate), and clw-cli over plain HTTP for its RSS, in one
# run: requests/s ratio (target >= 0.95x wrk) and peak RSS over TLS vs plain.
.PHONY: bench-tls
bench-tls:
	@command -v wrk >/dev/null || (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null))
	@command -v /usr/bin/time >/dev/null || (apt-get install -y time >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y time >/dev/null))
	@command -v openssl >/dev/null || (apt-get install -y openssl >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y openssl >/dev/null))
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	loadgen/bench/bench-tls.sh $(CLW_BIN)/clw-cli $(CLW_BIN)/clw-auth $(BENCH_DURATION) $(BENCH_USERS)

# --- memory limits, leak reproduction and verification ---
.PHONY: leak-repro fix-verify
MEM_BIN ?= $(or $(CARGO_TARGET_DIR),target)/release
MEMORY_LIMIT ?= 256M
USERS ?= 100
# leak-repro stops after this long: the OOM kill must come within 2 minutes.
LEAK_DURATION ?= 120
DURATION ?= 300
LEAK_PORT ?= 38443
FIX_PORT ?= 38444
# LEAK=<kind> picks the leaky server's leak (CLAW_SESSION_CACHE_LEAK), e.g.
# unbounded, expired-retained, payload-duplication, arc-cycle,
# handle-accumulation; empty: the one profiles/leaky.json names.
LEAK ?=
# A few figure tables read summary.json with jq (Debian's, installed when
# missing). Pass/fail rules are clw-cli's own: `clw-cli verify RUN_DIR
# --expect leak|bounded|soak` (run/src/verify.rs) and `clw-cli capacity`
# (run/src/capacity.rs), each printing the top growth sites or the holds.
JQ ?= jq
NEED_JQ = command -v $(JQ) >/dev/null || (apt-get update -qq && apt-get install -y -qq jq >/dev/null)

# The production failure on a laptop: the leaky server under a 256 MiB
# cgroup limit, login-storm at 100 users, until the kernel OOM-kills it
# (exit 137). Succeeds (exit 0) when the leak is reproduced: an OOM kill or
# a `leak` verdict. reports/leak-repro/ holds the curves and the report.
leak-repro:
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	rm -rf reports/leak-repro
	$(if $(LEAK),CLAW_SESSION_CACHE_LEAK=$(LEAK)) $(MEM_BIN)/clw-cli auth load-test \
	  --scenario scenarios/login-storm.toml --concurrent-users $(USERS) \
	  --duration $(LEAK_DURATION) --target http://127.0.0.1:$(LEAK_PORT) \
	  --spawn-server "$(MEM_BIN)/clw-auth --config profiles/leaky.json --port $(LEAK_PORT)" \
	  --memory-limit $(MEMORY_LIMIT) --on-server-exit stop --out reports/leak-repro || true
	$(MEM_BIN)/clw-cli verify reports/leak-repro --expect leak

# The load at which a build stops levelling off: capacity-steps (25, 50,
# 100 and 200 users, each held 50 s) against profiles/CAPACITY_PROFILE.json
# under MEMORY_LIMIT. Prints each hold's throughput, p99, peak RSS and
# memory slope from summary.json's stages, and the first hold whose memory
# still climbs (grows by more than 1 MiB and 5% of its peak over the hold).
CAPACITY_PROFILE ?= fixed
CAPACITY_PORT ?= 38445
CAPACITY_OUT = reports/capacity-$(CAPACITY_PROFILE)
.PHONY: capacity
capacity:
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	rm -rf $(CAPACITY_OUT)
	$(MEM_BIN)/clw-cli auth load-test --scenario scenarios/capacity-steps.toml \
	  --target http://127.0.0.1:$(CAPACITY_PORT) \
	  --spawn-server "$(MEM_BIN)/clw-auth --config profiles/$(CAPACITY_PROFILE).json --port $(CAPACITY_PORT)" \
	  --memory-limit $(MEMORY_LIMIT) --on-server-exit stop --out $(CAPACITY_OUT) || true
	$(MEM_BIN)/clw-cli capacity $(CAPACITY_OUT)

# The fix under the same load: the fixed server must stay under 80% of the
# limit for DURATION seconds, never be killed, and read as `bounded`.
fix-verify:
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	rm -rf reports/fix-verify
	$(MEM_BIN)/clw-cli auth load-test \
	  --scenario scenarios/login-storm.toml --concurrent-users $(USERS) \
	  --duration $(DURATION) --target http://127.0.0.1:$(FIX_PORT) \
	  --spawn-server "$(MEM_BIN)/clw-auth --config profiles/fixed.json --port $(FIX_PORT)" \
	  --memory-limit $(MEMORY_LIMIT) --on-server-exit stop --out reports/fix-verify || true
	$(MEM_BIN)/clw-cli verify reports/fix-verify --expect bounded

# Issue 11's acceptance: make leak-repro for each leak kind must name the
# leaking cache (or the request path) as its top growth site, and make
# fix-verify must grow no site past the bounded cache's fill. A table on
# stdout; every run kept in reports/leak-sites/. About 15 minutes.
.PHONY: leak-sites
leak-sites:
	@$(NEED_JQ)
	MAKE="$(MAKE)" JQ=$(JQ) CLW_CLI=$(MEM_BIN)/clw-cli loadgen/scripts/leak-sites.sh

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

# --- fuzzing (cargo fuzz on nightly; not part of `make test`) ---
.PHONY: fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= http_request config_load scenario_parse run_folder
CARGO_NIGHTLY ?= cargo +nightly

# Each target in fuzz/fuzz_targets/ for FUZZ_SECONDS, from the committed
# seeds (fuzz/corpus/<target>, read-only) plus what earlier runs found
# (fuzz/work/<target>, git-ignored). Fails if any target crashes; the input
# is saved under fuzz/artifacts/<target>/ and the log in fuzz/work/<target>.log.
# Replay one: cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd fuzz && $(CARGO_NIGHTLY) fuzz build
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/work/$$t; \
	  dict=""; [ -f fuzz/dict/$$t.dict ] && dict="-dict=dict/$$t.dict"; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  if (cd fuzz && $(CARGO_NIGHTLY) fuzz run $$t work/$$t corpus/$$t -- \
	        -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 $$dict) \
	        >fuzz/work/$$t.log 2>&1; then \
	    grep -E '^Done [0-9]+ runs|^stat::(number_of_executed_units|peak_rss_mb)' fuzz/work/$$t.log | sed 's/^/  /'; \
	    grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' fuzz/work/$$t.log | tail -1 | sed 's/^/  /'; \
	  else \
	    failed="$$failed $$t"; \
	    grep -E 'panicked at|^SUMMARY|Test unit written to|ERROR: libFuzzer' fuzz/work/$$t.log | sed 's/^/  /'; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed (inputs in fuzz/artifacts/, logs in fuzz/work/)"; exit 1; fi; \
	echo "fuzz: no crash in $(FUZZ_TARGETS) ($(FUZZ_SECONDS) s each)"

# --- supply chain ---
.PHONY: audit
CARGO_DENY_VERSION ?= 0.20.2
# AUDIT_REQUIRE_ADVISORIES=1 fails instead of skipping when the advisory
# database cannot be fetched (for CI machines that can reach GitHub).
AUDIT_REQUIRE_ADVISORIES ?= 0

# cargo-deny (installed when missing) with deny.toml: licenses, banned and
# duplicate crates, sources (crates.io only); then advisories, whose RustSec
# database lives on GitHub: checked when it can be fetched, otherwise
# skipped with the reason printed.
audit:
	@command -v cargo-deny >/dev/null || $(CARGO) install --locked cargo-deny@$(CARGO_DENY_VERSION)
	$(CARGO) deny --color never check --hide-inclusion-graph licenses bans sources
	@if fetch=$$(timeout 300 $(CARGO) deny fetch db 2>&1); then \
	  echo "$(CARGO) deny --offline check advisories"; \
	  $(CARGO) deny --color never --offline check --hide-inclusion-graph advisories; \
	else \
	  why=$$(printf '%s\n' "$$fetch" | grep -E 'fatal:|error:|ERROR' | tail -1); \
	  if [ "$(AUDIT_REQUIRE_ADVISORIES)" = 1 ]; then \
	    echo "audit: advisories FAILED: cannot fetch the RustSec advisory database: $$why"; exit 1; \
	  fi; \
	  echo "audit: advisories SKIPPED: cannot fetch the RustSec advisory database (https://github.com/RustSec/advisory-db): $$why"; \
	  echo "audit: licenses, bans and sources were checked; run 'make audit' where GitHub is reachable for advisories"; \
	fi

# --- soak ---
.PHONY: soak
SOAK_USERS ?= 1000
SOAK_DURATION ?= 120
SOAK_PORT ?= 38445
SOAK_SCENARIO ?= scenarios/login-storm.toml
# Open files each process may need: one socket per user on both sides, plus
# the server's listener, logs, /proc reads and the run folder.
SOAK_NOFILE ?= $(shell echo $$(( $(SOAK_USERS) * 2 + 1024 )))

# SOAK_USERS users for SOAK_DURATION s of login-storm against the fixed
# server under its MEMORY_LIMIT: no 5xx, never killed, peak RSS under 80%
# of the limit, verdict bounded, and the run's own thresholds passed.
# Raises the open-files limit (both processes inherit it) or says why not.
soak:
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	rm -rf reports/soak
	@ulimit -n $(SOAK_NOFILE) 2>/dev/null || ulimit -n "$$(ulimit -Hn)"; \
	if [ "$$(ulimit -n)" != unlimited ] && [ "$$(ulimit -n)" -lt $(SOAK_NOFILE) ]; then \
	  echo "soak: open-files limit is $$(ulimit -n) (hard $$(ulimit -Hn)); $(SOAK_USERS) users need $(SOAK_NOFILE): raise the hard limit (ulimit -Hn) or lower SOAK_USERS"; exit 1; \
	fi; \
	echo "soak: $(SOAK_USERS) users, $(SOAK_DURATION) s, limit $(MEMORY_LIMIT), open files $$(ulimit -n)"; \
	$(MEM_BIN)/clw-cli auth load-test \
	  --scenario $(SOAK_SCENARIO) --concurrent-users $(SOAK_USERS) \
	  --duration $(SOAK_DURATION) --target http://127.0.0.1:$(SOAK_PORT) \
	  --spawn-server "$(MEM_BIN)/clw-auth --config profiles/fixed.json --port $(SOAK_PORT)" \
	  --memory-limit $(MEMORY_LIMIT) --on-server-exit stop --out reports/soak || true
	@test -f reports/soak/summary.json || { echo "soak FAILED: no reports/soak/summary.json (clw-cli did not run)"; exit 1; }
	$(MEM_BIN)/clw-cli verify reports/soak --expect soak

# --- the CI memory gate ---
.PHONY: gate
GATE_DURATION ?= 60
GATE_USERS ?= 100
GATE_PORT ?= 38446
GATE_LEAK ?= unbounded
GATE_BASELINE ?= profiles/baselines/ci.json
GATE_DIR ?= reports/gate
GATE_CLI = $(MEM_BIN)/clw-cli
GATE_LOAD = $(GATE_CLI) auth load-test --scenario scenarios/login-storm.toml \
  --concurrent-users $(GATE_USERS) --duration $(GATE_DURATION) --memory-limit $(MEMORY_LIMIT) \
  --target http://127.0.0.1:$(GATE_PORT) --quiet

# The gate on this repository's own service: the fixed profile must pass
# against the committed baseline, and a leaky build must FAIL the gate (a
# gate that cannot fail proves nothing). JUnit and Markdown in GATE_DIR.
# GATE_UPDATE=1 rewrites the baseline from the fixed run instead.
gate:
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	rm -rf $(GATE_DIR)
	$(GATE_LOAD) --spawn-server "$(MEM_BIN)/clw-auth --config profiles/fixed.json --port $(GATE_PORT)" \
	  --out $(GATE_DIR)/fixed || true
ifeq ($(GATE_UPDATE),1)
	$(GATE_CLI) gate $(GATE_DIR)/fixed --baseline $(GATE_BASELINE) --update-baseline
else
	$(GATE_CLI) gate $(GATE_DIR)/fixed --baseline $(GATE_BASELINE) \
	  --junit $(GATE_DIR)/fixed-junit.xml --summary-md $(GATE_DIR)/fixed.md
	CLAW_SESSION_CACHE_LEAK=$(GATE_LEAK) $(GATE_LOAD) --abort-on-fail \
	  --spawn-server "$(MEM_BIN)/clw-auth --config profiles/leaky.json --port $(GATE_PORT)" \
	  --out $(GATE_DIR)/leaky || true
	@if env -u GITHUB_STEP_SUMMARY $(GATE_CLI) gate $(GATE_DIR)/leaky --baseline $(GATE_BASELINE) \
	    --junit $(GATE_DIR)/leaky-junit.xml --summary-md $(GATE_DIR)/leaky.md > $(GATE_DIR)/leaky-gate.txt; then \
	  cat $(GATE_DIR)/leaky-gate.txt; echo "gate BROKEN: the leaky build ($(GATE_LEAK)) passed the gate"; exit 1; \
	else \
	  cat $(GATE_DIR)/leaky-gate.txt; echo "gate works: the leaky build ($(GATE_LEAK)) failed it, as it must"; \
	fi
endif

# --- the gate's own figures (docs/gate.md) ---
.PHONY: bench-gate-noise bench-leak-detect
NOISE_RUNS ?= 10
NOISE_DURATION ?= 60
# NOISE_RUNS identical fixed-mode runs (login-storm, GATE_USERS users,
# NOISE_DURATION s, MEMORY_LIMIT): the spread of peak RSS, peak allocated,
# p99 and throughput that the baseline tolerances must absorb, and how
# often the fixed cache was called a leak (it must be never).
NOISE_FIGURES = def stats(f): (map(f) | sort) as $$v \
  | "min \($$v[0] | floor)  median \($$v[length/2|floor] | floor)  max \($$v[-1] | floor)  spread (max-min)/median \((($$v[-1] - $$v[0]) / $$v[length/2|floor] * 1000 | round) / 10)%"; \
  "runs: \(length); false leaks (verdict leak or live leak): \(map(select(.memory.verdict == "leak" or .memory.leak_detected_at_s != null)) | length)", \
  "peak_rss_bytes:       " + stats(.memory.peak_rss_bytes), \
  "peak_allocated_bytes: " + stats(.memory.peak_allocated_bytes), \
  "p99_ms (x1000):       " + stats(.latency_ms.p99 * 1000), \
  "throughput_rps:       " + stats(.throughput_rps), \
  "verdicts: \(map(.memory.verdict) | group_by(.) | map("\(.[0]) \(length)") | join(", "))"
bench-gate-noise:
	@$(NEED_JQ)
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	rm -rf reports/gate-noise
	$(GATE_CLI) auth load-test --scenario scenarios/login-storm.toml --concurrent-users $(GATE_USERS) \
	  --duration $(NOISE_DURATION) --memory-limit $(MEMORY_LIMIT) --target http://127.0.0.1:$(GATE_PORT) --quiet \
	  --spawn-server "$(MEM_BIN)/clw-auth --config profiles/fixed.json --port $(GATE_PORT)" \
	  --repeat $(NOISE_RUNS) --no-report --out reports/gate-noise > /dev/null || true
	@$(JQ) -s -r '$(NOISE_FIGURES)' reports/gate-noise/run-*/summary.json

LEAK_KINDS ?= unbounded expired-retained payload-duplication arc-cycle handle-accumulation
# Each leak kind under login-storm at GATE_USERS users and MEMORY_LIMIT with
# --abort-on-fail: when the live verdict first said leak (target: within
# 30 s of load start), and how the run ended.
bench-leak-detect:
	@$(NEED_JQ)
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	rm -rf reports/leak-detect
	@for kind in $(LEAK_KINDS); do \
	  CLAW_SESSION_CACHE_LEAK=$$kind $(GATE_LOAD) --abort-on-fail --no-report \
	    --spawn-server "$(MEM_BIN)/clw-auth --config profiles/leaky.json --port $(GATE_PORT)" \
	    --out reports/leak-detect/$$kind > /dev/null 2>&1; \
	  $(JQ) -r --arg k $$kind '"\($$k): verdict \(.memory.verdict), live leak at \(.memory.leak_detected_at_s // "never") s, elapsed \(.elapsed_s * 10 | round / 10) s, peak RSS \(.memory.peak_rss_percent)%, \(if .server.exit then "server died (exit \(.server.exit.shell_code))" else "stopped by --abort-on-fail" end)"' \
	    reports/leak-detect/$$kind/summary.json; \
	done

# --- sharded load (docs/loadgen.md "Sharded runs") ---
.PHONY: shard-demo
SHARD_BIN ?= $(or $(CARGO_TARGET_DIR),target)/release
SHARD_USERS ?= 30
SHARD_DURATION ?= 10
SHARDS ?= 3
# Three shards on this machine against one clw-auth, started together
# (--start-at), merged (clw-cli merge) and reported: reports/shard-demo/merged/.
# Prints each shard's line and the merged summary line.
shard-demo:
	@command -v jq >/dev/null || (apt-get update -qq && apt-get install -y -qq jq >/dev/null)
	$(CARGO) build --release -p clw-cli -p clw-auth --bins
	loadgen/demo/shard-demo.sh $(SHARD_BIN)/clw-cli $(SHARD_BIN)/clw-auth reports/shard-demo $(SHARD_USERS) $(SHARD_DURATION) $(SHARDS)

# --- real services nobody here wrote (services/, docs/real-services.md) ---
.PHONY: real-services
# Installs the services (services/install.sh: npm ci per Node service,
# Debian's golang-go when go is missing, the Go binary in
# target/real-services), then drives them with clw-cli on loopback
# (loadgen/tests/it/real_services.rs). CLW_REQUIRE_REAL_SERVICES=1 makes a
# test fail, instead of skipping, when a service is missing. Runs one test
# at a time: their memory verdicts need the 2 cores to themselves.
real-services:
	REAL_SERVICES_DIR=$(or $(CARGO_TARGET_DIR),target)/real-services services/install.sh
	CLW_REQUIRE_REAL_SERVICES=1 REAL_SERVICES_DIR=$(or $(CARGO_TARGET_DIR),target)/real-services \
	  $(CARGO) test -p clw-cli --test it real_services:: -- --test-threads=1 --nocapture
