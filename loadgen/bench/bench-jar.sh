#!/usr/bin/env bash
# The cost of the cookie jar: clw-cli's CPU per request with `[http]
# cookies = true` against `false`, on the same nginx in one run, rounds
# alternating which goes first; medians. Every nginx answer sets two
# cookies, so with the jar on each response is stored and every request
# after an iteration's first carries both back.
#
# The server's access log is the second source: with cookies on every
# /me request must have carried `session` and `theme` (and no /login, the
# iteration's first request after the jar is emptied), with cookies off no
# request may carry a Cookie header, and in both the log's line count must
# match clw-cli's requests.total. A round that fails a check stops the
# bench (exit 1): a benchmark that measures nothing is worse than none.
# Usage: bench-jar.sh CLW_CLI [DURATION_S] [USERS] [ROUNDS] [OUT_FILE]
set -euo pipefail
HERE=$(dirname "$0")
. "$HERE/nginx.sh"
CLI=${1:?clw-cli binary}
DURATION=${2:-10}
USERS=${3:-20}
ROUNDS=${4:-3}
OUT=${5:-reports/bench-jar.txt}
WORK=$(mktemp -d)
cleanup() { stop_nginx; rm -rf "$WORK"; }
trap cleanup EXIT

start_nginx "$WORK" '    location / {
      add_header Set-Cookie "session=s%3A4f2a9c1e7b3d8a60.Jt0kZ2x; Path=/; HttpOnly" always;
      add_header Set-Cookie "theme=dark; Path=/" always;
      return 200 "ok\n";
    }'

# The two variants differ only in [http] cookies; keep_cookies is the
# default (false: the jar is emptied at each iteration's start).
for mode in on off; do
  [ $mode = on ] && cookies=true || cookies=false
  cat >"$WORK/jar-$mode.toml" <<EOF
name = "bench-jar-$mode"
[http]
cookies = $cookies
[[steps]]
name = "login"
method = "GET"
path = "/login"
[[steps]]
name = "me"
method = "GET"
path = "/me"
[[steps]]
name = "me-again"
method = "GET"
path = "/me"
EOF
done

# One round of MODE: appends "rps cpu_us_per_request" to $WORK/MODE.txt
# after checking the run against the server's log.
run() {  # $1: on|off, $2: round
  local mode=$1 dir="$WORK/run-$1-$2" log="$WORK/access-$1-$2.log"
  /usr/bin/time -f '%U %S' -o "$WORK/time" "$CLI" auth load-test --target "http://$ADDR" \
    --scenario "$WORK/jar-$mode.toml" --concurrent-users "$USERS" --duration "$DURATION" \
    --quiet --no-report --no-metrics --no-heap-profile --out "$dir" >"$WORK/cli.out" 2>&1 \
    || [ $? -eq 1 ] || { cat "$WORK/cli.out" >&2; exit 1; }  # 1: a threshold, not a failure here
  rotate_nginx_log "$WORK" "$log"
  local total failed rps cpu lines cookie_lines me bad
  total=$(jq '.requests.total' "$dir/summary.json")
  failed=$(jq '.requests.failed' "$dir/summary.json")
  rps=$(jq '.throughput_rps' "$dir/summary.json")
  cpu=$(awk '{print $1 + $2}' "$WORK/time")
  lines=$(wc -l <"$log")
  cookie_lines=$(awk '$2 != "-"' "$log" | wc -l)
  me=$(awk '$1 == "/me"' "$log" | wc -l)
  if [ "$mode" = on ]; then
    # /me lines without both cookies, and /login lines with any.
    bad=$(awk '($1 == "/me" && !($0 ~ /session=s%3A4f2a9c1e7b3d8a60\.Jt0kZ2x/ && $0 ~ /theme=dark/)) || ($1 == "/login" && $2 != "-")' "$log" | wc -l)
  else
    bad=$cookie_lines
  fi
  echo "  round $2 cookies $mode: $total requests ($failed failed), server log $lines lines, $cookie_lines with a Cookie header ($me to /me), $(awk -v c="$cpu" 'BEGIN {printf "%.2f", c}') s CPU" >>"$WORK/rounds.txt"
  # In flight at the deadline: at most one request per user that the
  # server logged and clw-cli did not count.
  if [ "$total" -le 0 ] || [ "$failed" -gt $((total / 1000)) ] || [ "$bad" -ne 0 ] \
    || [ $((lines - total)) -lt 0 ] || [ $((lines - total)) -gt "$USERS" ] \
    || { [ "$mode" = on ] && [ "$cookie_lines" -lt $((me)) ]; }; then
    cat "$WORK/rounds.txt"
    echo "bench-jar: round $2 (cookies $mode) does not check out: $bad requests with the wrong Cookie header, $failed failed, server log $lines lines against $total requests" >&2
    exit 1
  fi
  echo "$rps $(awk -v c="$cpu" -v n="$total" 'BEGIN {print c * 1e6 / n}') $(awk -v n="$total" '{print $1 * 1e6 / n}' "$WORK/time")" >>"$WORK/$mode.txt"
}

NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*nginx/||')
echo "bench-jar: clw-cli, $USERS users, ${DURATION}s per round, GET /login /me /me against nginx $NGINX_VERSION at $ADDR, cookies on and off alternately, $ROUNDS rounds each"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run off "$r"; run on "$r"; else run on "$r"; run off "$r"; fi
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
RPS_OFF=$(awk '{print $1}' "$WORK/off.txt" | median)
RPS_ON=$(awk '{print $1}' "$WORK/on.txt" | median)
CPU_OFF=$(awk '{print $2}' "$WORK/off.txt" | median)
CPU_ON=$(awk '{print $2}' "$WORK/on.txt" | median)
USER_OFF=$(awk '{print $3}' "$WORK/off.txt" | median)
USER_ON=$(awk '{print $3}' "$WORK/on.txt" | median)
mkdir -p "$(dirname "$OUT")"
# awk's printf has no thousands separator outside a locale that has one.
COMMAS='function commas(n,  s) { s = sprintf("%.0f", n); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }'
{
  echo "bench-jar (nginx $NGINX_VERSION, $ROUNDS rounds each, $USERS users, $DURATION s; CPU = clw-cli's user+sys (/usr/bin/time) / summary.json requests.total; medians)"
  awk -v r="$RPS_OFF" -v c="$CPU_OFF" "$COMMAS"' BEGIN { printf "  cookies off  %9s req/s  %6.2f µs CPU/request\n", commas(r), c }'
  awk -v r="$RPS_ON" -v c="$CPU_ON" -v o="$CPU_OFF" "$COMMAS"' BEGIN { printf "  cookies on   %9s req/s  %6.2f µs CPU/request   ratio %.2f (target <= 1.10: %s)\n", commas(r), c, c / o, c / o <= 1.10 ? "met" : "MISSED" }'
  echo "  per round, CPU µs/request: off $(awk '{printf "%.2f ", $2}' "$WORK/off.txt")| on $(awk '{printf "%.2f ", $2}' "$WORK/on.txt")"
  echo "  user CPU alone (the jar's own work; sys is the sockets'): off $(printf %.2f "$USER_OFF") µs/request, on $(printf %.2f "$USER_ON") µs/request (medians)"
  echo "  per round, requests/s:     off $(awk '{printf "%.0f ", $1}' "$WORK/off.txt")| on $(awk '{printf "%.0f ", $1}' "$WORK/on.txt")"
  echo "server check (nginx access log, \$http_cookie):"
  cat "$WORK/rounds.txt"
} | tee "$OUT"
