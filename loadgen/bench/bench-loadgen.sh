#!/usr/bin/env bash
# clw-cli against wrk on the same clw-auth GET /ready, in one run: same
# connections (50), same duration, wrk with 2 threads. Prints each
# generator's requests/s and peak RSS, and their ratio.
# Usage: bench-loadgen.sh CLW_CLI CLW_AUTH [DURATION_S] [USERS]
set -euo pipefail
. "$(dirname "$0")/../../auth-server/bench/listening.sh"
CLI=${1:?clw-cli binary}
AUTH=${2:?clw-auth binary}
DURATION=${3:-10}
USERS=${4:-50}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$AUTH" --config profiles/fixed.json --host 127.0.0.1 --port 0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_for_listen "$WORK/server.log"

SCENARIO=scenarios/ready-only.toml
if [ ! -f "$SCENARIO" ]; then
  SCENARIO="$WORK/ready-only.toml"
  printf 'name = "ready-only"\n[[steps]]\nmethod = "GET"\npath = "/ready"\n' >"$SCENARIO"
fi

ROUNDS=${BENCH_ROUNDS:-3}
# clw-cli as a load generator, beside wrk, which profiles nothing: no heap
# profiles (symbolizing them after the load loads the server binary's debug
# info into clw-cli, ~75 MiB of RSS then; docs/loadgen.md).
run_cli() {  # $1: round; appends "rps cpu_s rss_kb" to $WORK/cli.txt
  /usr/bin/time -f '%U %S %M' -o "$WORK/cli.time" "$CLI" auth load-test --target "http://$ADDR" \
    --scenario "$SCENARIO" --concurrent-users "$USERS" --duration "$DURATION" \
    --quiet --no-report --no-metrics --no-heap-profile --out "$WORK/run$1" >"$WORK/cli.out" || [ $? -eq 1 ]  # 1: a threshold, not a failure here
  local rps; rps=$(grep -o '"throughput_rps": [0-9.]*' "$WORK/run$1/summary.json" | awk '{print $2}')
  echo "$rps $(tail -1 "$WORK/cli.time" | awk '{print $1 + $2, $3}')" >>"$WORK/cli.txt"
}
run_wrk() {
  /usr/bin/time -f '%U %S %M' -o "$WORK/wrk.time" wrk -t2 -c"$USERS" -d"${DURATION}s" "http://$ADDR/ready" >"$WORK/wrk.out"
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  echo "$rps $(tail -1 "$WORK/wrk.time" | awk '{print $1 + $2, $3}')" >>"$WORK/wrk.txt"
}

echo "clw-cli ($USERS users) and wrk -t2 -c$USERS, ${DURATION}s each, GET http://$ADDR/ready, $ROUNDS rounds (order alternates)"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run_cli "$r"; run_wrk; else run_wrk; run_cli "$r"; fi
done

# Medians over rounds; CPU per request = (user+sys) / requests, the
# generator's own cost whatever the shared 2 cores were doing.
summarize() {  # file label
  sort -n "$1" | awk -v label="$2" -v d="$DURATION" '{ rps[NR] = $1; cpu[NR] = $2; rss[NR] = $3 }
    END { m = int((NR + 1) / 2);
          printf "%-10s %14.0f %11.1f MiB %12.2f\n", label, rps[m], rss[m] / 1024, cpu[m] * 1e6 / (rps[m] * d) }'
}
printf "\n%-10s %14s %15s %12s\n" "generator" "requests/s" "peak RSS" "CPU us/req"
summarize "$WORK/cli.txt" clw-cli
summarize "$WORK/wrk.txt" "wrk -t2"
echo "per round (requests/s): clw-cli $(awk '{printf "%.0f ", $1}' "$WORK/cli.txt")| wrk $(awk '{printf "%.0f ", $1}' "$WORK/wrk.txt")"
CLI_RPS=$(sort -n "$WORK/cli.txt" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) {print $1}')
WRK_RPS=$(sort -n "$WORK/wrk.txt" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) {print $1}')
awk -v c="$CLI_RPS" -v w="$WRK_RPS" 'BEGIN { printf "ratio clw-cli/wrk (medians): %.2fx  (target: >= 1.00x with <= 16 MiB)\n", c / w }'
