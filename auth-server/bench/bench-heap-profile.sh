#!/usr/bin/env bash
# The cost of jemalloc heap profiling: clw-auth (profiles/fixed.json) with
# authentication.memory.heap_profile on and off, alternately, under the
# same wrk login load (POST /auth/login, 1 KiB claims, random users; the
# LRU cache churns so every request allocates and frees). Prints each
# round's requests/s and the server's peak RSS (VmHWM), then the medians
# and the throughput drop. Usage:
#   bench-heap-profile.sh CLW_AUTH [DURATION_S] [CONNECTIONS] [ROUNDS]
set -euo pipefail
AUTH=${1:?clw-auth binary}
DURATION=${2:-10}
CONNS=${3:-50}
ROUNDS=${4:-3}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cat >"$WORK/login.lua" <<'LUA'
local pad = string.rep("x", 1024)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format('{"username":"user-%d","password":"clw-load-test","claims":{"pad":"%s"}}',
    math.random(0, 9999), pad)
  return wrk.format("POST", "/auth/login", nil, body)
end
LUA

run() {  # $1: on|off; appends "rps hwm_kib" to $WORK/$1.txt
  local enabled=true; [ "$1" = off ] && enabled=false
  CLAW_MEMORY_HEAP_PROFILE=$enabled CLAW_LOGIN_THROTTLE=false \
    "$AUTH" --config profiles/fixed.json --host 127.0.0.1 --port 0 >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  local addr=
  for _ in $(seq 1 300); do
    addr=$(grep -ao 'listening on [0-9.]*:[0-9]*' "$WORK/server.log" | head -1 | sed 's/listening on //') || true
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "clw-auth did not start:"; cat "$WORK/server.log"; exit 3; }
  if [ "$1" = on ]; then
    grep -q 'heap profiling on' "$WORK/server.log" || { echo "profiling did not turn on:"; cat "$WORK/server.log"; exit 3; }
  fi
  wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$WORK/login.lua" "http://$addr" >"$WORK/wrk.out"
  local rps hwm
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
  echo "$rps $hwm" >>"$WORK/$1.txt"
  printf "  round %-2s profiling %-3s %10.0f req/s  peak RSS %6.1f MiB\n" "$2" "$1" "$rps" "$(echo "$hwm" | awk '{print $1 / 1024}')"
}

echo "clw-auth heap profiling on vs off: wrk -t2 -c$CONNS, ${DURATION}s, POST /auth/login with 1 KiB claims, $ROUNDS rounds (order alternates)"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run on "$r"; run off "$r"; else run off "$r"; run on "$r"; fi
done
median() { sort -n -k"$2" "$1" | awk -v k="$2" '{ v[NR] = $k } END { print v[int((NR + 1) / 2)] }'; }
ON_RPS=$(median "$WORK/on.txt" 1); OFF_RPS=$(median "$WORK/off.txt" 1)
ON_RSS=$(median "$WORK/on.txt" 2); OFF_RSS=$(median "$WORK/off.txt" 2)
printf "\n%-14s %12s %12s\n" "profiling" "requests/s" "peak RSS"
printf "%-14s %12.0f %8.1f MiB\n" "on (512 KiB)" "$ON_RPS" "$(awk -v k="$ON_RSS" 'BEGIN {print k / 1024}')"
printf "%-14s %12.0f %8.1f MiB\n" "off" "$OFF_RPS" "$(awk -v k="$OFF_RSS" 'BEGIN {print k / 1024}')"
awk -v on="$ON_RPS" -v off="$OFF_RPS" -v ron="$ON_RSS" -v roff="$OFF_RSS" 'BEGIN {
  drop = (off - on) * 100 / off
  printf "throughput drop with profiling on: %.1f%% (keep it on by default only if <= 5%%); peak RSS %+.1f MiB\n", drop, (ron - roff) / 1024 }'
