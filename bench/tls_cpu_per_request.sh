#!/usr/bin/env bash
# CPU per request over TLS + HTTP/2, TLS + HTTP/1.1 and plain HTTP/1.1, side by side in one run:
# polar-loadd against h2load at the same rate (`--rps`; `--h1` for HTTP/1.1), with h2load and wrk
# at their maximum as references. nginx (one worker, so the load generators get the other core)
# serves the same fixed 200 answer to POST /v1/events/ingest on three loopback ports: TLS offering
# h2 and http/1.1 by ALPN, TLS offering http/1.1 only, and plain HTTP. The certificate comes from a
# private CA made here with openssl; every client verifies it against that CA.
#
# Each tool runs alone. CPU is user + system of the tool (/usr/bin/time); requests are the 200s in
# nginx's access log, so every tool is judged by what the target answered. polar-loadd's rate is
# counted from the same log over DURATION seconds, starting WARMUP seconds after its first request.
#
# Goals (exit status 1 when one is missed): at every rate and protocol polar-loadd's CPU per
# request <= 1.5x h2load's at the same rate, its rate within +-0.5 %, its max RSS < 64 MiB; and
# plain HTTP/1.1 not worse than its figure of record (bench/cpu_per_request.sh, docs/performance.md):
# polar-loadd at 20,000/s <= 1.09x wrk at its maximum with 32 connections, measured here in the
# same run (the wrk-max-h1 row uses those 32 connections; needs h1, 20000 and MAX_SECONDS > 0).
#   bench/tls_cpu_per_request.sh                                   # figures of record (~25 min)
#   DURATION=5 MAX_SECONDS=3 bench/tls_cpu_per_request.sh          # smoke run
#   RATES=20000 PROTOCOLS=h2 bench/tls_cpu_per_request.sh          # one point
# Parameters (environment): RATES ("1000 5000 20000"), PROTOCOLS ("h2 h1tls h1"), DURATION (60),
# WARMUP (5), MAX_SECONDS (20; 0 skips the at-maximum references), H1_CLIENTS (h2load --h1
# connections; default one per 2,500/s of rate, so one at 1,000/s and eight at 20,000/s: one
# connection with one request at a time carries about that much here), H2_CLIENTS (1, h2load
# HTTP/2 connections), CURL (1 adds polar-loadd with http_client = "curl" at every point, as a
# reference), RATIO_GOAL (1.5), RATE_GOAL_PCT (0.5), RSS_GOAL_MIB (64), PLAIN_WRK_GOAL (1.09),
# PLAIN_WRK_CONNECTIONS (32).
#
# h2load --rps N sends on a libev timer of 1/N s per connection; libev sleeps in whole
# milliseconds, so above 1,000/s it sends several requests per wake-up. polar-loadd does the same
# by design (daemon.timer_slack, docs/performance.md), with each request timed from its own
# intended send time.
source "$(dirname "$0")/lib.sh"

RATES=${RATES:-"1000 5000 20000"}
PROTOCOLS=${PROTOCOLS:-"h2 h1tls h1"}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-5}
MAX_SECONDS=${MAX_SECONDS:-20}
H1_CLIENTS=${H1_CLIENTS:-auto}
H2_CLIENTS=${H2_CLIENTS:-1}
CURL=${CURL:-0}
RATIO_GOAL=${RATIO_GOAL:-1.5}
RATE_GOAL_PCT=${RATE_GOAL_PCT:-0.5}
RSS_GOAL_MIB=${RSS_GOAL_MIB:-64}
PLAIN_WRK_GOAL=${PLAIN_WRK_GOAL:-1.09}
PLAIN_WRK_CONNECTIONS=${PLAIN_WRK_CONNECTIONS:-32}

ensure_built
"$ROOT/scripts/deps" bench
for tool in h2load wrk nginx openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/deps bench)" >&2; exit 1; }
done

url_of() {
  case $1 in
    h2) echo "https://127.0.0.1:$PORT_h2" ;;
    h1tls) echo "https://127.0.0.1:$PORT_h1tls" ;;
    h1) echo "http://127.0.0.1:$PORT_h1" ;;
  esac
}

# 200s in the access log so far (after nginx flushed its buffer).
ok_lines() {
  sleep 1.2  # flush=1s
  awk '$2 == 200 { n++ } END { print n + 0 }' "$NGINX_LOG"
}

declare -A CPU REQS RSS RATE_PCT
# run NAME CMD...: the tool alone, its CPU, max RSS and the 200s nginx logged meanwhile.
run() {
  local name=$1
  shift
  local before before_ok after
  before_ok=$(ok_lines)
  before=$(wc -l <"$NGINX_LOG")
  /usr/bin/time -f '%U %S %M' -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || true
  after=$(ok_lines)
  CPU[$name]=$(cpu_of "$WORK/$name.time")
  RSS[$name]=$(awk 'END { printf "%.1f", $3 / 1024 }' "$WORK/$name.time")
  REQS[$name]=$((after - before_ok))
  # The achieved rate over DURATION s from WARMUP s after the tool's first request (target clock),
  # shifted by half a gap so that the window's edges fall between arrivals.
  if [ -n "${RATE_OF:-}" ]; then
    RATE_PCT[$name]=$(tail -n +"$((before + 1))" "$NGINX_LOG" | awk -v w="$WARMUP" -v d="$DURATION" -v r="$RATE_OF" '
      $2 != 200 { next }
      !started { start = $1 + w + 0.5 / r; end = start + d; started = 1 }
      $1 >= start && $1 < end { n++ }
      END { printf "%+.3f", (n / d - r) / r * 100 }')
  fi
}

us_per() { awk -v c="${CPU[$1]}" -v n="${REQS[$1]}" 'BEGIN { printf "%.2f", n ? c / n * 1e6 : 0 }'; }

make_certificates
start_tls_nginx
printf '%s' "$BODY" >"$WORK/body.json"
cat >"$WORK/post.lua" <<EOT
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
EOT

path=/v1/events/ingest
h2load_common=(-t1 -d "$WORK/body.json" -H "content-type: application/json" -H "authorization: Bearer bench-token")
fails=0
rows=()
# h2load connections for a point: H2_CLIENTS for HTTP/2; for HTTP/1.1 H1_CLIENTS, or one per
# 2,500/s of rate.
clients_for() {
  local proto=$1 rate=$2
  if [ "$proto" = h2 ]; then
    echo "$H2_CLIENTS"
  elif [ "$H1_CLIENTS" = auto ]; then
    echo $(((rate + 2499) / 2500))
  else
    echo "$H1_CLIENTS"
  fi
}

for proto in $PROTOCOLS; do
  url=$(url_of "$proto")
  h1=()
  streams=(-m 100)
  if [ "$proto" != h2 ]; then
    h1=(--h1)
    streams=(-m 1)
  fi
  if [ "$MAX_SECONDS" -gt 0 ]; then
    max_clients=$(clients_for "$proto" 20000)
    RATE_OF='' run "h2load-max-$proto" h2load "${h2load_common[@]}" "${h1[@]}" -c "$max_clients" \
      "${streams[@]}" -D "$MAX_SECONDS" "$url$path"
    rows+=("$proto max h2load-max-$proto $MAX_SECONDS")
    if [ "$proto" != h2 ]; then
      wrk_clients=$max_clients
      [ "$proto" = h1 ] && wrk_clients=$PLAIN_WRK_CONNECTIONS
      RATE_OF='' run "wrk-max-$proto" wrk -t1 -c"$wrk_clients" -d"${MAX_SECONDS}s" -s "$WORK/post.lua" \
        "$url$path"
      rows+=("$proto max wrk-max-$proto $MAX_SECONDS")
    fi
  fi
  for rate in $RATES; do
    seconds=$((WARMUP + DURATION))
    clients=$(clients_for "$proto" "$rate")
    per_client=$(awk -v r="$rate" -v c="$clients" 'BEGIN { printf "%g", r / c }')
    RATE_OF=$rate run "h2load-$proto-$rate" h2load "${h2load_common[@]}" "${h1[@]}" -c "$clients" \
      "${streams[@]}" --rps "$per_client" -D "$seconds" "$url$path"
    rows+=("$proto $rate h2load-$proto-$rate $seconds")
    LOADD_CA_FILE=$CA_FILE loadd_config "$url" "$rate" "$WORK/loadd-$proto-$rate.toml"
    RATE_OF=$rate run "polar-loadd-$proto-$rate" "$BIN/polar-loadd" --config "$WORK/loadd-$proto-$rate.toml" \
      --once --duration "$((seconds + 2))s"
    rows+=("$proto $rate polar-loadd-$proto-$rate $((seconds + 2))")
    if [ "$CURL" = 1 ]; then
      LOADD_HTTP_CLIENT=curl LOADD_CA_FILE=$CA_FILE loadd_config "$url" "$rate" "$WORK/curl-$proto-$rate.toml"
      RATE_OF=$rate run "curl-$proto-$rate" "$BIN/polar-loadd" --config "$WORK/curl-$proto-$rate.toml" \
        --once --duration "$((seconds + 2))s"
      rows+=("$proto $rate curl-$proto-$rate $((seconds + 2))")
    fi
  done
done

printf '%-7s %-7s %-28s %10s %10s %8s %10s %8s %8s\n' proto rate tool requests "req/s" "rate %" "cpu us/req" ratio "RSS MiB"
for row in "${rows[@]}"; do
  read -r proto rate name seconds <<<"$row"
  us=$(us_per "$name")
  ratio=-
  if [[ $name == curl-* ]]; then
    ref=$(us_per "h2load-$proto-$rate")
    ratio=$(awk -v a="$us" -v b="$ref" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')
  fi
  if [[ $name == polar-loadd-* ]]; then
    ref=$(us_per "h2load-$proto-$rate")
    ratio=$(awk -v a="$us" -v b="$ref" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')
    bad=$(awk -v a="$us" -v b="$ref" -v g="$RATIO_GOAL" -v p="${RATE_PCT[$name]}" -v gp="$RATE_GOAL_PCT" \
      -v m="${RSS[$name]}" -v gm="$RSS_GOAL_MIB" \
      'BEGIN { p = p < 0 ? -p : p; print (b <= 0 || a / b > g || p > gp || m >= gm) ? 1 : 0 }')
    [ "$bad" = 1 ] && { fails=$((fails + 1)); ratio="$ratio!"; }
  fi
  printf '%-7s %-7s %-28s %10d %10.0f %8s %10s %8s %8s\n' "$proto" "$rate" "$name" "${REQS[$name]}" \
    "$(awk -v n="${REQS[$name]}" -v s="$seconds" 'BEGIN { print n / s }')" "${RATE_PCT[$name]:--}" "$us" "$ratio" "${RSS[$name]}"
done
echo "(ratio: polar-loadd / h2load at the same rate; goals: <= ${RATIO_GOAL}x, rate within +-${RATE_GOAL_PCT} %, RSS < ${RSS_GOAL_MIB} MiB; ! marks a miss; curl-*: http_client = \"curl\", for reference)"
# Plain HTTP/1.1 not worse than its figure of record: polar-loadd at 20,000/s against wrk flat out.
if [ -n "${CPU[polar-loadd-h1-20000]:-}" ] && [ -n "${CPU[wrk-max-h1]:-}" ]; then
  plain=$(awk -v a="$(us_per polar-loadd-h1-20000)" -v b="$(us_per wrk-max-h1)" \
    'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  if awk -v r="$plain" -v g="$PLAIN_WRK_GOAL" 'BEGIN { exit !(r > 0 && r <= g) }'; then
    echo "plain HTTP/1.1: polar-loadd at 20000/s ${plain}x wrk at its maximum (goal <= ${PLAIN_WRK_GOAL}x, the figure of record): met"
  else
    echo "plain HTTP/1.1: polar-loadd at 20000/s ${plain}x wrk at its maximum (goal <= ${PLAIN_WRK_GOAL}x, the figure of record): MISSED"
    fails=$((fails + 1))
  fi
else
  echo "plain HTTP/1.1 check skipped (needs PROTOCOLS with h1, RATES with 20000, MAX_SECONDS > 0)"
fi
if [ "$fails" -gt 0 ]; then
  echo "FAIL: $fails point(s) missed a goal" >&2
  exit 1
fi
echo "PASS"
