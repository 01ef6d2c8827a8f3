#!/usr/bin/env bash
# clw-cli against wrk over https, in one run, on the same clw-auth serving
# TLS (a throw-away CA and certificate made here with openssl, the CA
# trusted by clw-cli through --cacert; wrk does not verify), plus clw-cli over plain HTTP on a
# second clw-auth for the RSS it is compared with. GET /ready, same
# connections, same duration, wrk with 2 threads, rounds alternating order.
# Prints each run's requests/s, peak RSS and CPU per request (medians), the
# https ratio clw-cli/wrk (target >= 0.95x) and clw-cli's RSS over TLS
# against its plain-HTTP figure, and the load average.
# Usage: bench-tls.sh CLW_CLI CLW_AUTH [DURATION_S] [USERS]
set -euo pipefail
. "$(dirname "$0")/../../auth-server/bench/listening.sh"
CLI=${1:?clw-cli binary}
AUTH=${2:?clw-auth binary}
DURATION=${3:-10}
USERS=${4:-50}
ROUNDS=${BENCH_ROUNDS:-3}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# A throw-away CA (what --cacert trusts) and a server certificate it signs.
EC="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $EC -days 1 -subj /CN=clw-bench-ca -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req $EC -subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$WORK/ext.cnf"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days 1 -extfile "$WORK/ext.cnf" -out "$WORK/cert.pem" 2>/dev/null

# Runs in this shell, not in $(...): a subshell's PIDS+=() would be lost
# and cleanup would leave the servers running.
start_server() {  # $1: name; the rest: environment; sets ADDR to host:port
  env "${@:2}" "$AUTH" --config profiles/fixed.json --host 127.0.0.1 --port 0 >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  wait_for_listen "$WORK/$1.log"
}
start_server plain
PLAIN=$ADDR
start_server tls CLAW_AUTH_TLS_CERT="$WORK/cert.pem" CLAW_AUTH_TLS_KEY="$WORK/key.pem"
TLS=$ADDR

run_cli() {  # $1: label, $2: base URL, $3: round; appends "rps cpu_s rss_kb" to $WORK/$1.txt
  /usr/bin/time -f '%U %S %M' -o "$WORK/$1.time" "$CLI" auth load-test --target "$2" \
    --cacert "$WORK/ca.pem" --scenario scenarios/ready-only.toml \
    --concurrent-users "$USERS" --duration "$DURATION" \
    --quiet --no-report --no-metrics --no-heap-profile --out "$WORK/$1-$3" >"$WORK/$1.out" || [ $? -eq 1 ]
  local rps; rps=$(grep -o '"throughput_rps": [0-9.]*' "$WORK/$1-$3/summary.json" | awk '{print $2}')
  echo "$rps $(tail -1 "$WORK/$1.time" | awk '{print $1 + $2, $3}')" >>"$WORK/$1.txt"
}
run_wrk() {  # $1: label, $2: URL
  /usr/bin/time -f '%U %S %M' -o "$WORK/$1.time" wrk -t2 -c"$USERS" -d"${DURATION}s" "$2" >"$WORK/$1.out"
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$1.out")
  echo "$rps $(tail -1 "$WORK/$1.time" | awk '{print $1 + $2, $3}')" >>"$WORK/$1.txt"
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "https://$TLS (TLS clw-auth) and http://$PLAIN: clw-cli ($USERS users, --cacert) and wrk -t2 -c$USERS, ${DURATION}s each, GET /ready, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    run_cli cli-tls "https://localhost:${TLS##*:}" "$r"; run_wrk wrk-tls "https://$TLS/ready"
  else
    run_wrk wrk-tls "https://$TLS/ready"; run_cli cli-tls "https://localhost:${TLS##*:}" "$r"
  fi
  run_cli cli-plain "http://$PLAIN" "$r"
done

median() {  # file column
  sort -n "$1" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'
}
summarize() {  # file label
  sort -n "$1" | awk -v label="$2" -v d="$DURATION" '{ rps[NR] = $1; cpu[NR] = $2; rss[NR] = $3 }
    END { m = int((NR + 1) / 2);
          printf "%-16s %12.0f %11.1f MiB %12.2f\n", label, rps[m], rss[m] / 1024, cpu[m] * 1e6 / (rps[m] * d) }'
}
printf "\n%-16s %12s %15s %12s\n" "run" "requests/s" "peak RSS" "CPU us/req"
summarize "$WORK/cli-tls.txt" "clw-cli https"
summarize "$WORK/wrk-tls.txt" "wrk -t2 https"
summarize "$WORK/cli-plain.txt" "clw-cli http"
for f in cli-tls wrk-tls cli-plain; do
  echo "per round $f (requests/s): $(awk '{printf "%.0f ", $1}' "$WORK/$f.txt")"
done
# Peak RSS is per process, so it is compared median to median.
awk -v c="$(median "$WORK/cli-tls.txt" 1)" -v w="$(median "$WORK/wrk-tls.txt" 1)" \
  'BEGIN { printf "https ratio clw-cli/wrk (medians): %.2fx  (target: >= 0.95x)\n", c / w }'
awk -v t="$(median "$WORK/cli-tls.txt" 3)" -v p="$(median "$WORK/cli-plain.txt" 3)" \
  'BEGIN { printf "clw-cli peak RSS: %.1f MiB over https, %.1f MiB over http (+%.1f MiB for %d TLS connections)\n", t / 1024, p / 1024, (t - p) / 1024, '"$USERS"' }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
