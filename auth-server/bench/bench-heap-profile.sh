#!/usr/bin/env bash
# The cost of jemalloc heap profiling: clw-auth (profiles/fixed.json) with
# authentication.memory.heap_profile on and off, alternately, under the
# same wrk login load (POST /auth/login, 1 KiB claims, random users; the
# LRU cache churns so every request allocates and frees). Prints each
# round's requests/s and the server's peak RSS (VmHWM), then the medians
# and the throughput drop. On a shared machine requests/s swings with
# whatever else runs; the server's CPU time per request (user + sys from
# /proc, over the requests wrk counted) is the steadier measure of the
# cost, and its ratio is the throughput a CPU-bound server would lose.
# Usage:
#   bench-heap-profile.sh CLW_AUTH [DURATION_S] [CONNECTIONS] [ROUNDS]
set -euo pipefail
. "$(dirname "$0")/listening.sh"
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

TCK=$(getconf CLK_TCK)
run() {  # $1: on|off; appends "rps hwm_kib cpu_us_per_req" to $WORK/$1.txt
  local enabled=true; [ "$1" = off ] && enabled=false
  CLAW_MEMORY_HEAP_PROFILE=$enabled CLAW_LOGIN_THROTTLE=false \
    "$AUTH" --config profiles/fixed.json --host 127.0.0.1 --port 0 >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_for_listen "$WORK/server.log" 300
  local addr=$ADDR
  if [ "$1" = on ]; then
    grep -q 'heap profiling on' "$WORK/server.log" || { echo "profiling did not turn on:"; cat "$WORK/server.log"; exit 3; }
  fi
  wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$WORK/login.lua" "http://$addr" >"$WORK/wrk.out"
  local rps hwm reqs ticks cpu
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
  # utime + stime: fields 14 and 15 after the parenthesised command name.
  ticks=$(sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{print $12 + $13}')
  cpu=$(awk -v t="$ticks" -v k="$TCK" -v n="$reqs" 'BEGIN {print t / k * 1e6 / n}')
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
  echo "$rps $hwm $cpu" >>"$WORK/$1.txt"
  printf "  round %-2s profiling %-3s %10.0f req/s  peak RSS %6.1f MiB  server CPU %5.1f us/req\n" \
    "$2" "$1" "$rps" "$(echo "$hwm" | awk '{print $1 / 1024}')" "$cpu"
}

echo "clw-auth heap profiling on vs off: wrk -t2 -c$CONNS, ${DURATION}s, POST /auth/login with 1 KiB claims, $ROUNDS rounds (order alternates)"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run on "$r"; run off "$r"; else run off "$r"; run on "$r"; fi
done
median() { sort -n -k"$2" "$1" | awk -v k="$2" '{ v[NR] = $k } END { print v[int((NR + 1) / 2)] }'; }
ON_RPS=$(median "$WORK/on.txt" 1); OFF_RPS=$(median "$WORK/off.txt" 1)
ON_RSS=$(median "$WORK/on.txt" 2); OFF_RSS=$(median "$WORK/off.txt" 2)
ON_CPU=$(median "$WORK/on.txt" 3); OFF_CPU=$(median "$WORK/off.txt" 3)
printf "\n%-14s %12s %12s %16s\n" "profiling" "requests/s" "peak RSS" "server CPU/req"
printf "%-14s %12.0f %8.1f MiB %13.1f us\n" "on (512 KiB)" "$ON_RPS" "$(awk -v k="$ON_RSS" 'BEGIN {print k / 1024}')" "$ON_CPU"
printf "%-14s %12.0f %8.1f MiB %13.1f us\n" "off" "$OFF_RPS" "$(awk -v k="$OFF_RSS" 'BEGIN {print k / 1024}')" "$OFF_CPU"
awk -v on="$ON_RPS" -v off="$OFF_RPS" -v ron="$ON_RSS" -v roff="$OFF_RSS" -v con="$ON_CPU" -v coff="$OFF_CPU" 'BEGIN {
  printf "with profiling on: requests/s %+.1f%%, server CPU per request %+.1f%% (a CPU-bound server loses %.1f%% throughput), peak RSS %+.1f MiB\n",
    (on - off) * 100 / off, (con - coff) * 100 / coff, (1 - coff / con) * 100, (ron - roff) / 1024
  print "keep it on by default only if the drop is <= 5%" }'
