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

# --- load generator (clw-cli) ---

# --- memory limits, leak reproduction and verification ---

# --- reports ---
