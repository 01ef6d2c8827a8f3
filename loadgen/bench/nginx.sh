# Sourced by bench-jar.sh and bench-peer.sh: a throw-away nginx (Debian's)
# on 127.0.0.1, one worker, as the current user, every file in a temp dir.
#
# start_nginx DIR LOCATIONS: writes DIR/nginx.conf around LOCATIONS (the
# server block's body), starts `nginx -c DIR/nginx.conf` (daemon off, pid,
# error log, access log and temp paths all in DIR) and sets NGINX_PID and
# ADDR (127.0.0.1:PORT). The access log DIR/access.log has one line per
# request, "URI COOKIE" (COOKIE is the request's Cookie header, "-" when it
# has none), so a bench can count what the server received. A port already
# taken is skipped (a few tries from 38460); exits 3 with nginx's error log
# when it will not start.
# rotate_nginx_log DIR DEST: moves the access log to DEST, after nginx has
# flushed it, and makes nginx reopen a new one (USR1).
# stop_nginx: kills NGINX_PID (the master; its worker exits with it).
NGINX_PID=
start_nginx() {
  local dir=$1 locations=$2 port
  mkdir -p "$dir/tmp"
  for port in $(seq 38460 38469); do
    cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user $(id -un) $(id -gn);" )
events { worker_connections 1024; }
http {
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type text/plain;
  keepalive_requests 1000000;
  log_format uri_cookie '\$uri \$http_cookie';
  access_log $dir/access.log uri_cookie buffer=256k flush=1s;
  server {
    listen 127.0.0.1:$port;
$locations
  }
}
EOF
    : >"$dir/error.log"
    nginx -c "$dir/nginx.conf" -p "$dir" >>"$dir/error.log" 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 1 50); do
      if ! kill -0 "$NGINX_PID" 2>/dev/null; then break; fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        ADDR=127.0.0.1:$port
        return 0
      fi
      sleep 0.1
    done
    stop_nginx
    grep -q 'Address already in use' "$dir/error.log" || break
  done
  echo "nginx did not start ($dir/error.log):" >&2
  cat "$dir/error.log" >&2
  exit 3
}

rotate_nginx_log() {
  # The buffer is flushed at most 1 s after the last write; the reopen
  # (USR1) flushes it too, and the new file is created by the worker.
  mv "$1/access.log" "$2"
  kill -USR1 "$NGINX_PID"
  for _ in $(seq 1 50); do [ -e "$1/access.log" ] && break; sleep 0.1; done
  sleep 0.2
}

stop_nginx() {
  if [ -n "$NGINX_PID" ]; then
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
  fi
}
