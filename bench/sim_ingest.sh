#!/usr/bin/env bash
# polar-sim's ingest capacity: POST /v1/events/ingest, batches of 7 events with unique
# external_ids, keep-alive, on loopback, measured with wrk (bench/ingest.lua). Side by side in the
# same run, the same wrk load against nginx answering a constant 200 gives this machine's ceiling
# for an HTTP server, so the figure reads as a ratio as well as requests/s.
#   bench/sim_ingest.sh [SECONDS] [CONNECTIONS]      (defaults 10 s, 64 connections)
#   SIM_THREADS=N                                    polar-sim --threads and nginx workers
# Needs build/bin/polar-sim (scripts/build default) and wrk (scripts/deps bench); nginx is optional.
# Run it on a quiet machine: other builds on the same cores lower the figure.
# Exits 1 when the goal (>= 20,000 requests/s, no errors, no duplicate) is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
connections=${2:-64}
# One core is wrk's; polar-sim gets HTTP threads for the rest. On the 2-core VM one thread did
# 25,900 requests/s where two did 17,400-19,200 (2026-11-26, 10-s runs): three busy threads on two
# cores. nginx gets as many workers; it lost 9-26 % with two (53,000 to 39,200-48,500).
sim_threads=${SIM_THREADS:-$(( $(nproc) > 2 ? $(nproc) - 1 : 1 ))}
wrk_threads=${WRK_THREADS:-1}
command -v wrk >/dev/null || { echo "bench/sim_ingest.sh: wrk is missing (scripts/deps bench)" >&2; exit 69; }
[ -x build/bin/polar-sim ] || { echo "bench/sim_ingest.sh: build/bin/polar-sim is missing (scripts/build default)" >&2; exit 69; }

run=$(mktemp -d /tmp/polar-bench-XXXXXX)
sim_pid=""
nginx_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$run"
}
trap cleanup EXIT

build/bin/polar-sim --listen 127.0.0.1:0 --threads "$sim_threads" >"$run/sim.out" 2>"$run/sim.err" &
sim_pid=$!
for _ in $(seq 100); do [ -s "$run/sim.out" ] && break; sleep 0.05; done
base_url=$(sed -E 's/.*"base_url":"([^"]+)".*/\1/' "$run/sim.out")
token=$(sed -E 's/.*"token":"([^"]+)".*/\1/' "$run/sim.out")

measure() {  # URL -> prints "requests/s errors"
  BENCH_RUN_ID=measure-$(date +%s%N) POLAR_TOKEN=$token wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" -s bench/ingest.lua "$1" \
    | awk '/^requests\/s:/ {print $2, $4}'
}

# Warm up (connections, allocator), then measure.
BENCH_RUN_ID=warm-$(date +%s%N) POLAR_TOKEN=$token wrk -t1 -c"$connections" -d2s -s bench/ingest.lua "$base_url" >/dev/null
read -r sim_rps sim_errors < <(measure "$base_url")
rss_kib=$(ps -o rss= -p "$sim_pid" | tr -d ' ')
# Every event must have been stored: a duplicate is answered without storing and is cheaper.
duplicates=$(curl -s --max-time 5 "$base_url/metrics" |
  awk '/^polar_sim_events_ingested_total\{result="duplicate"\}/ {print $2}')

nginx_rps=""
if command -v nginx >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$run/nginx"
  cat >"$run/nginx.conf" <<CONF
worker_processes $sim_threads;
pid $run/nginx.pid;
error_log $run/nginx/error.log;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $run/nginx;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 '{"inserted":7,"duplicates":0}'; }
  }
}
CONF
  nginx -c "$run/nginx.conf" -p "$run" 2>/dev/null &
  nginx_pid=$!
  sleep 0.3
  POLAR_TOKEN=$token wrk -t1 -c"$connections" -d2s -s bench/ingest.lua "http://127.0.0.1:$port" >/dev/null
  read -r nginx_rps _ < <(measure "http://127.0.0.1:$port")
fi

echo "polar-sim ingest (batches of 7, ${connections} keep-alive connections, ${seconds}s, wrk -t${wrk_threads}, sim --threads ${sim_threads}):"
echo "  polar-sim: ${sim_rps} requests/s ($(awk -v r="$sim_rps" 'BEGIN {printf "%.0f", r * 7}') events/s), errors ${sim_errors}, duplicates ${duplicates:-unknown}, RSS ${rss_kib} KiB"
if [ -n "$nginx_rps" ]; then
  echo "  nginx constant 200, same load: ${nginx_rps} requests/s"
  echo "  ratio polar-sim / nginx: $(awk -v a="$sim_rps" -v b="$nginx_rps" 'BEGIN {printf "%.2f", a / b}')"
fi
# wrk's errors come as "non-2xx/socket".
if awk -v r="${sim_rps:-0}" -v e="${sim_errors:-1/1}" -v d="${duplicates:-1}" \
  'BEGIN {split(e, n, "/"); exit !(r >= 20000 && n[1] + n[2] == 0 && d == 0)}'; then
  echo "  target >= 20000 requests/s, no errors, no duplicates: met"
else
  echo "  target >= 20000 requests/s, no errors, no duplicates: NOT met on this run"
  exit 1
fi
