# Sourced by the bench and demo scripts that start clw-auth with --port 0.
# wait_for_listen LOG [TRIES]: sets ADDR to the host:port clw-auth logs in
# LOG ("listening on 127.0.0.1:PORT"), polling every 0.1 s up to TRIES times
# (default 100); if it never does, prints LOG and exits 3. Call it in the
# script's own shell, not in $(...), so that the exit ends the script.
wait_for_listen() {
  ADDR=
  for _ in $(seq 1 "${2:-100}"); do
    ADDR=$(grep -ao 'listening on [0-9.]*:[0-9]*' "$1" | head -1 | sed 's/listening on //') || true
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "clw-auth did not start ($1):" >&2
  cat "$1" >&2
  exit 3
}
