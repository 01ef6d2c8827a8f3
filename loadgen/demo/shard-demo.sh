#!/usr/bin/env bash
# make shard-demo: three clw-cli shards on this machine against one clw-auth,
# started together with --start-at, merged with `clw-cli merge`, reported.
# Prints each shard's line and the merged summary line.
# Usage: shard-demo.sh CLW_CLI CLW_AUTH OUT [USERS] [DURATION_S] [SHARDS]
set -euo pipefail
. "$(dirname "$0")/../../auth-server/bench/listening.sh"
CLI=${1:?clw-cli binary}
AUTH=${2:?clw-auth binary}
OUT=${3:?output folder}
USERS=${4:-30}
DURATION=${5:-10}
SHARDS=${6:-3}
SCENARIO=${SCENARIO:-scenarios/steady-sessions.toml}
SERVER_PID=
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT

rm -rf "$OUT"
mkdir -p "$OUT"
"$AUTH" --config profiles/fixed.json --host 127.0.0.1 --port 0 >"$OUT/clw-auth.log" 2>&1 &
SERVER_PID=$!
wait_for_listen "$OUT/clw-auth.log"

# Every shard starts its load at the same instant, a few seconds ahead so
# that each has done its checks by then.
START_AT=$(date -u -d '+4 seconds' +%FT%TZ)
echo "clw-auth on $ADDR (pid $SERVER_PID); $SHARDS shards of $USERS users for ${DURATION}s, starting at $START_AT"
for i in $(seq 1 "$SHARDS"); do
  "$CLI" auth load-test --target "http://$ADDR" --scenario "$SCENARIO" \
    --concurrent-users "$USERS" --duration "$DURATION" \
    --shard "$i/$SHARDS" --start-at "$START_AT" --server-pid "$SERVER_PID" \
    --ramp-up 2s --threads 1 --quiet --no-report --out "$OUT/shard-$i" >"$OUT/shard-$i.txt" 2>&1 &
  PIDS+=($!)
done
status=0
for p in "${PIDS[@]}"; do
  rc=0
  wait "$p" || rc=$?
  [ "$rc" -le "$status" ] || status=$rc
done
PIDS=()
# 1 is a shard whose own thresholds failed: still merged. Anything else
# (bad input, unreachable target) leaves no shard to merge.
if [ "$status" -gt 1 ]; then
  echo "a shard failed (exit $status):"; cat "$OUT"/shard-*.txt; exit "$status"
fi
for i in $(seq 1 "$SHARDS"); do
  jq -r '"shard \(.shard.index)/\(.shard.count): users \(.shard.first_user)..\(.shard.first_user + .shard.users - 1), \(.requests.total) requests, p99 \(.latency_ms.p99) ms, memory sampled: \(.shard.samples_memory)"' "$OUT/shard-$i/summary.json"
done

shards=()
for i in $(seq 1 "$SHARDS"); do shards+=("$OUT/shard-$i"); done
merge_status=0
"$CLI" merge "${shards[@]}" --out "$OUT/merged" --quiet >"$OUT/merged.txt" 2>&1 || merge_status=$?
[ "$merge_status" -le 1 ] || { cat "$OUT/merged.txt"; exit "$merge_status"; }
server_total=$(curl -s "http://$ADDR/metrics" | awk '/^clw_http_requests_total\{/ && /route="\/auth\// {s += $NF} END {printf "%d", s}')
jq -r --arg server "$server_total" '"merged: \(.merged.shards | length) of \(.merged.count) shards, \(.requests.total) requests (the server counted \($server) on /auth/*), \(.throughput_rps | floor) req/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, errors \(.requests.failed), verdict \(.memory.verdict) (from shard \(.merged.memory_from)), start spread \(.merged.start_spread_s) s, \(if .passed then "PASSED" else "FAILED" end)"' "$OUT/merged/summary.json"
echo "report: $OUT/merged/index.html"
exit "$merge_status"
