#!/usr/bin/env bash
# clw-cli beside Locust (FastHttpUser, one process) running the same
# scripted cookie flow against the same server, in one run: requests/s
# and client CPU per request (user+sys from /usr/bin/time over the
# requests the tool itself counted) for Locust, clw-cli --threads 1 (one
# core, as Locust's one process) and clw-cli with its default threads.
# Each tool must finish with ~0 failures (at most 0.1% of its requests):
# a fast tool that fails every request is not fast, so the bench stops
# (exit 1) otherwise.
#
# The server: services/express-session (an Express app with
# express-session: CSRF form login, session cookie, 302, /me, logout) when
# SERVICES has it installed (server.js, node_modules, its scenario
# scenarios/express-login-logout.toml and Locust's twin
# SERVICES/locust/cookie_flow.py); else, or with PEER_SERVER=nginx,
# Debian's nginx with loadgen/bench/peer-nginx.toml and peer_nginx.py (login
# sets the cookie, /me answers 401 without it). The output says which.
# Usage: bench-peer.sh CLW_CLI LOCUST [DURATION_S] [USERS] [OUT_FILE]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/nginx.sh"
CLI=${1:?clw-cli binary}
LOCUST=${2:?locust executable (in a venv)}
DURATION=${3:-20}
USERS=${4:-20}
OUT=${5:-reports/bench-peer.txt}
SERVICES=${SERVICES:-services}
WORK=$(mktemp -d)
NODE_PID=
cleanup() {
  stop_nginx
  if [ -n "$NODE_PID" ]; then kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

EXPRESS=$SERVICES/express-session
express_ready() {
  [ -f "$EXPRESS/server.js" ] && [ -d "$EXPRESS/node_modules/express-session" ] \
    && [ -f "$EXPRESS/scenarios/express-login-logout.toml" ] && [ -f "$SERVICES/locust/cookie_flow.py" ] \
    && command -v node >/dev/null
}
SERVER=${PEER_SERVER:-auto}
if [ "$SERVER" = auto ]; then
  if express_ready; then SERVER=express; else
    SERVER=nginx
    WHY="$EXPRESS is not installed here (server.js, node_modules, its scenario and $SERVICES/locust/cookie_flow.py)"
  fi
fi

if [ "$SERVER" = express ]; then
  express_ready || { echo "bench-peer: PEER_SERVER=express but $EXPRESS is not installed (run services/install.sh)" >&2; exit 3; }
  # Same retry-on-taken-port scheme as nginx.sh; binds 127.0.0.1 only.
  for port in $(seq 38470 38479); do
    PORT=$port SESSION_STORE=memory node "$EXPRESS/server.js" >"$WORK/express.log" 2>&1 &
    NODE_PID=$!
    for _ in $(seq 1 100); do
      kill -0 "$NODE_PID" 2>/dev/null || break
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { ADDR=127.0.0.1:$port; break 2; }
      sleep 0.1
    done
    kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; NODE_PID=
    grep -q EADDRINUSE "$WORK/express.log" || break
  done
  [ -n "$NODE_PID" ] || { echo "bench-peer: the Express app did not start:" >&2; cat "$WORK/express.log" >&2; exit 3; }
  SCENARIO=$EXPRESS/scenarios/express-login-logout.toml
  LOCUSTFILE=$SERVICES/locust/cookie_flow.py
  LABEL="Express $(node -p 'require(process.argv[1] + "/node_modules/express/package.json").version' "$(cd "$EXPRESS" && pwd)") + express-session (node $(node --version)): GET /login (CSRF), POST /login (form, 302 + cookie), GET /me, POST /logout"
else
  start_nginx "$WORK" '    location = /login {
      add_header Set-Cookie "session=s%3A4f2a9c1e7b3d8a60.Jt0kZ2x; Path=/; HttpOnly" always;
      add_header Set-Cookie "theme=dark; Path=/" always;
      return 200 "login\n";
    }
    location = /me {
      if ($cookie_session != "s%3A4f2a9c1e7b3d8a60.Jt0kZ2x") { return 401 "no session\n"; }
      return 200 "me\n";
    }
    location / { return 404; }'
  SCENARIO=$HERE/peer-nginx.toml
  LOCUSTFILE=$HERE/peer_nginx.py
  LABEL="nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'): GET /login (sets the cookie), GET /me, GET /me (401 without it)${WHY:+; Express not used: $WHY}"
fi
LOCUST_VERSION=$("$LOCUST" --version 2>&1 | awk '{print $2; exit}')
echo "bench-peer: $USERS users, ${DURATION}s each, at $ADDR: $LABEL"

# Each run appends "label|rps|requests|failed|cpu_s" to $WORK/results.
record() { echo "$1|$2|$3|$4|$(awk '{print $1 + $2}' "$WORK/time")" >>"$WORK/results"; }

run_locust() {
  # The final stats (--json-file; the --csv file is the last periodic
  # write and misses the run's end).
  /usr/bin/time -f '%U %S' -o "$WORK/time" "$LOCUST" -f "$LOCUSTFILE" --headless \
    -u "$USERS" -r "$USERS" -t "${DURATION}s" --host "http://$ADDR" --only-summary \
    --json-file "$WORK/locust" --loglevel WARNING >"$WORK/locust.out" 2>&1 \
    || [ $? -eq 1 ] || { cat "$WORK/locust.out" >&2; exit 1; }  # 1: some failures, judged below
  local row
  # requests/s as Locust prints it: requests over first start to last request.
  row=$("$(dirname "$LOCUST")/python" -c 'import json, sys
s = json.load(open(sys.argv[1]))
n = sum(e["num_requests"] for e in s)
span = max(e["last_request_timestamp"] for e in s) - min(e["start_time"] for e in s)
print(n / span, n, sum(e["num_failures"] for e in s))' "$WORK/locust.json")
  read -r rps n failed <<<"$row"
  record "locust $LOCUST_VERSION FastHttpUser, 1 process" "$rps" "$n" "$failed"
}

run_cli() {  # $1: label, then extra flags
  local label=$1 dir="$WORK/run$(wc -l <"$WORK/results" 2>/dev/null || echo 0)"
  shift
  /usr/bin/time -f '%U %S' -o "$WORK/time" "$CLI" auth load-test --target "http://$ADDR" \
    --scenario "$SCENARIO" --concurrent-users "$USERS" --duration "$DURATION" "$@" \
    --quiet --no-report --no-metrics --no-heap-profile --out "$dir" >"$WORK/cli.out" 2>&1 \
    || [ $? -eq 1 ] || { cat "$WORK/cli.out" >&2; exit 1; }  # 1: a threshold, judged below
  record "$label" "$(jq '.throughput_rps' "$dir/summary.json")" \
    "$(jq '.requests.total' "$dir/summary.json")" "$(jq '.requests.failed' "$dir/summary.json")"
}

: >"$WORK/results"
run_locust
run_cli "clw-cli --threads 1" --threads 1
run_cli "clw-cli, $(nproc) threads (default)"

COMMAS='function commas(n,  s) { s = sprintf("%.0f", n); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }'
mkdir -p "$(dirname "$OUT")"
{
  echo "bench-peer ($LABEL; $USERS users, $DURATION s each, one run; CPU = the tool's user+sys (/usr/bin/time, start-up included) / the requests it counted)"
  awk -F'|' "$COMMAS"' { printf "  %-40s %9s req/s  %7.2f µs CPU/request  %s requests, %s failed\n", $1, commas($2), $5 * 1e6 / $3, commas($3), $4 }' "$WORK/results"
  awk -F'|' 'NR == 1 { lr = $2; lc = $5 * 1e6 / $3 } NR == 2 { printf "  clw-cli --threads 1 against locust: %.1fx the requests/s at %.1fx less CPU per request\n", $2 / lr, lc / ($5 * 1e6 / $3) }' "$WORK/results"
} | tee "$OUT"
# ~0 failures each: at most 0.1% of a tool's requests, and some requests.
awk -F'|' '$3 <= 0 || $4 > $3 / 1000 { print "bench-peer: " $1 " had " $4 " failures in " $3 " requests: its figures mean nothing" > "/dev/stderr"; bad = 1 } END { exit bad }' "$WORK/results"
