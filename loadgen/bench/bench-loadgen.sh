#!/usr/bin/env bash
# clw-cli against wrk on the same clw-auth GET /ready, in one run: same
# connections (50), same duration, wrk with 2 threads. Prints each
# generator's requests/s and peak RSS, and their ratio.
# Usage: bench-loadgen.sh CLW_CLI CLW_AUTH [DURATION_S] [USERS]
set -euo pipefail
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
ADDR=
for _ in $(seq 1 100); do
  ADDR=$(grep -ao 'listening on [0-9.]*:[0-9]*' "$WORK/server.log" | head -1 | sed 's/listening on //') || true
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "clw-auth did not start:"; cat "$WORK/server.log"; exit 3; }

SCENARIO=scenarios/ready-only.toml
if [ ! -f "$SCENARIO" ]; then
  SCENARIO="$WORK/ready-only.toml"
  printf 'name = "ready-only"\n[[steps]]\nmethod = "GET"\npath = "/ready"\n' >"$SCENARIO"
fi

echo "clw-cli: $USERS users, ${DURATION}s, GET http://$ADDR/ready"
/usr/bin/time -f '%M' -o "$WORK/cli.rss" "$CLI" auth load-test --target "http://$ADDR" \
  --scenario "$SCENARIO" --concurrent-users "$USERS" --duration "$DURATION" \
  --quiet --no-report --no-metrics --out "$WORK/run" >"$WORK/cli.out" || [ $? -eq 1 ]  # 1: a threshold, not a failure here
CLI_RPS=$(grep -o '"throughput_rps": [0-9.]*' "$WORK/run/summary.json" | awk '{print $2}')

echo "wrk: -t2 -c$USERS -d${DURATION}s"
/usr/bin/time -f '%M' -o "$WORK/wrk.rss" wrk -t2 -c"$USERS" -d"${DURATION}s" "http://$ADDR/ready" >"$WORK/wrk.out"
WRK_RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")

CLI_KB=$(tail -1 "$WORK/cli.rss")
WRK_KB=$(tail -1 "$WORK/wrk.rss")
awk -v c="$CLI_RPS" -v w="$WRK_RPS" -v ck="$CLI_KB" -v wk="$WRK_KB" 'BEGIN {
  printf "\n%-10s %14s %14s\n", "generator", "requests/s", "peak RSS";
  printf "%-10s %14.0f %11.1f MiB\n", "clw-cli", c, ck / 1024;
  printf "%-10s %14.0f %11.1f MiB\n", "wrk -t2", w, wk / 1024;
  printf "ratio clw-cli/wrk: %.2fx  (target: >= 1.00x with <= 16 MiB)\n", c / w;
}'
