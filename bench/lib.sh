# Shared helpers for the bench/ scripts (sourced, not run). Everything listens on 127.0.0.1 only,
# every process started here is stopped by its pid on exit, and every run is bounded in time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/build/bin
WORK=$(mktemp -d /tmp/polar-bench-XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A free loopback port (nginx cannot be told to pick one).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ensure_built() {
  [ -x "$BIN/polar-loadd" ] || "$ROOT/scripts/build" default >/dev/null
}

# The body every tool sends: one event, as polar-loadd's event_ingestion builds it with batch_size 1.
BODY='{"events":[{"name":"generate.text","external_customer_id":"loadtest-customer-3","external_id":"loadtest-bench-1-0","metadata":{"selectedMeterSlug":"v1:meter:pack","totalPrice":0.42}}]}'

# Starts nginx (one worker, so the load generators get the other core) with a fast, fixed answer
# to POST /v1/events/ingest that polar-loadd judges ok, and a static file at /static.json.
# Access log: one line per request, the time in seconds ($msec), buffered.
# Sets NGINX_URL and NGINX_LOG.
start_nginx() {
  local port dir=$WORK/nginx
  port=$(free_port)
  mkdir -p "$dir/logs" "$dir/html"
  chmod 755 "$WORK" "$dir" "$dir/html"
  printf '{"inserted":1,"duplicates":0}' >"$dir/html/static.json"
  cat >"$dir/nginx.conf" <<EOT
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  log_format t '\$msec';
  access_log $dir/logs/access.log t buffer=256k flush=1s;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_temp_path $dir/body;
  server {
    listen 127.0.0.1:$port reuseport backlog=4096;
    root $dir/html;
    location = /v1/events/ingest {
      default_type application/json;
      return 200 '{"inserted":1,"duplicates":0}';
    }
    location = /static.json { default_type application/json; }
  }
}
EOT
  nginx -p "$dir" -c "$dir/nginx.conf" &
  PIDS+=($!)
  NGINX_URL=http://127.0.0.1:$port
  NGINX_LOG=$dir/logs/access.log
  for _ in $(seq 50); do
    curl -s -o /dev/null "$NGINX_URL/static.json" && return 0
    sleep 0.1
  done
  echo "nginx did not start" >&2
  cat "$dir/logs/error.log" >&2
  exit 1
}

# Makes a private CA and a server certificate for 127.0.0.1 and localhost (EC P-256, as a modern
# front end would serve; the handshakes are few, the bulk cipher is what every request pays). Sets CA_FILE.
make_certificates() {
  local d=$WORK/pki
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=polar-bench-ca -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
  CA_FILE=$d/ca.pem
}

# Starts nginx (one worker) with the fixed answer of start_nginx on three loopback ports:
# PORT_h2 (TLS, ALPN h2 and http/1.1), PORT_h1tls (TLS, http/1.1 only) and PORT_h1 (plain HTTP).
# Access log: time and status, one line per request. Needs make_certificates first.
# Sets NGINX_LOG.
start_tls_nginx() {
  local dir=$WORK/nginx-tls
  mkdir -p "$dir/logs" "$dir/html"
  chmod 755 "$WORK" "$dir" "$dir/html"
  printf '{"inserted":1,"duplicates":0}' >"$dir/html/static.json"
  PORT_h2=$(free_port)
  PORT_h1tls=$(free_port)
  PORT_h1=$(free_port)
  cat >"$dir/nginx.conf" <<EOT
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  log_format t '\$msec \$status';
  access_log $dir/logs/access.log t buffer=256k flush=1s;
  # One connection carries a whole run: no GOAWAY or close after 1,000 requests (the default).
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $dir/body;
  ssl_certificate $WORK/pki/server.pem;
  ssl_certificate_key $WORK/pki/server.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:bench:1m;
  server {
    listen 127.0.0.1:$PORT_h2 ssl http2 reuseport backlog=4096;
    listen 127.0.0.1:$PORT_h1tls ssl reuseport backlog=4096;
    listen 127.0.0.1:$PORT_h1 reuseport backlog=4096;
    root $dir/html;
    location = /v1/events/ingest {
      default_type application/json;
      return 200 '{"inserted":1,"duplicates":0}';
    }
    location = /static.json { default_type application/json; }
  }
}
EOT
  nginx -p "$dir" -c "$dir/nginx.conf" &
  PIDS+=($!)
  NGINX_LOG=$dir/logs/access.log
  for _ in $(seq 50); do
    curl -s -o /dev/null --cacert "$CA_FILE" "https://127.0.0.1:$PORT_h2/static.json" && return 0
    sleep 0.1
  done
  echo "nginx did not start" >&2
  cat "$dir/logs/error.log" >&2
  exit 1
}

# Lines in the nginx access log so far (after nginx flushed its buffer).
log_lines() {
  sleep 1.2  # flush=1s
  wc -l <"$NGINX_LOG"
}

# Writes a polar-loadd config for one event_ingestion scenario at RATE/s against URL.
# 64 connections: enough for 20,000/s at loopback service times (~1 ms); more only makes
# libcurl search a longer connection list (LOADD_CONNECTIONS overrides).
loadd_config() {
  local url=$1 rate=$2 file=$3
  cat >"$file" <<EOT
[target]
base_url = "$url"
token = "bench-token"
connections = ${LOADD_CONNECTIONS:-64}
max_in_flight = 10000
http_client = "${LOADD_HTTP_CLIENT:-auto}"
${LOADD_CA_FILE:+ca_file = \"$LOADD_CA_FILE\"}

[metrics]
listen = "127.0.0.1:0"

[daemon]
timer_slack = "${LOADD_TIMER_SLACK:-1ms}"

[scenarios.bench]
type = "event_ingestion"
rate = "$rate/s"
batch_size = 1
# The shipped default: a load box that cannot keep up drops (and counts) arrivals instead of
# queueing them, so memory and the rate figures stay honest.
max_in_flight = 1000
external_customer_ids = ["loadtest-customer-3"]
EOT
}

# CPU seconds (user + system) of a finished /usr/bin/time -f '%U %S' output file.
cpu_of() {
  awk 'END { printf "%.3f", $1 + $2 }' "$1"
}
