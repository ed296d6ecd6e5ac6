#!/usr/bin/env bash
# Compressed soak: polar-loadd at RATE/s (default 5,000/s, batches of one event) against polar-sim
# for MINUTES minutes (default 10) with faults switched on and off: every PERIOD seconds (40) the
# first half is clean and the second half has a fault, in turn a 503 storm, answers slower than the
# timeout, truncated JSON, a 429 storm, refused connections, TCP resets and a 5 s freeze of every
# response: a round of all seven every 280 s, so ten minutes hold two rounds. RSS and open fds of
# polar-loadd are sampled every SAMPLE seconds (10), with the request rate and the share answered ok
# since the previous sample.
#
# Verdict (exit 1 if one fails): polar-loadd stayed up; a second round of every fault grows RSS by
# less than GROWTH_PCT % (default 1): the RSS at the end of the last clean half against the end of
# the clean half after the first round. The first round is where the heap reaches its high-water
# mark (2,000 requests in flight while answers are slower than the timeout: about 1.1 MiB that
# glibc keeps for reuse); that step is printed, not judged. A leak grows every round. At the end of
# every clean half the fds are back within 4 of the end of the second clean half (buffers warm,
# every connection opened); from the second on, the last sample of every clean half has the full
# rate (95 %), all ok and no dropped arrival: the schedule is back on time. Run it on a quiet
# machine: a starved load box drops (and counts) arrivals, which fails the last check.
#   bench/soak.sh                                   # the full run (10 min at 5,000/s)
#   MINUTES=3 RATE=2000 bench/soak.sh               # a smoke run
source "$(dirname "$0")/lib.sh"

MINUTES=${MINUTES:-10}
RATE=${RATE:-5000}
SAMPLE=${SAMPLE:-10}
PERIOD=${PERIOD:-40}
GROWTH_PCT=${GROWTH_PCT:-1}
HALF=$((PERIOD / 2))

ensure_built
[ -x "$BIN/polar-sim" ] || "$ROOT/scripts/build" default >/dev/null

"$BIN/polar-sim" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --threads 2 >"$WORK/sim.out" \
  2>"$WORK/sim.err" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/sim.out" ] && break; sleep 0.1; done
ready=$(head -1 "$WORK/sim.out")
[ -n "$ready" ] || { echo "polar-sim did not start:" >&2; cat "$WORK/sim.err" >&2; exit 1; }
json() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$ready" "$1"; }
SIM_URL=$(json base_url)
ADMIN=$(json admin_url)
TOKEN=$(json token)

cat >"$WORK/loadd.toml" <<EOT
[target]
base_url = "$SIM_URL"
timeout = "1s"
connect_timeout = "1s"
connections = 64
max_in_flight = 10000

[metrics]
listen = "127.0.0.1:0"

[scenarios.soak]
type = "event_ingestion"
rate = "$RATE/s"
batch_size = 1
max_in_flight = 2000
EOT
LOAD_TEST_API_TOKEN=$TOKEN "$BIN/polar-loadd" --config "$WORK/loadd.toml" 2>"$WORK/loadd.err" &
loadd=$!
PIDS+=("$loadd")
for _ in $(seq 100); do grep -q 'metrics on' "$WORK/loadd.err" && break; sleep 0.1; done
METRICS=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/metrics' "$WORK/loadd.err" | head -1)
[ -n "$METRICS" ] || { echo "polar-loadd did not start:" >&2; cat "$WORK/loadd.err" >&2; exit 1; }

admin() { curl -sf -o /dev/null -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$ADMIN$2"; }
FAULTS=("503 storm" "answers 3 s > timeout 1 s" "truncated JSON" "429 storm" "connection refused"
  "TCP reset" "5 s freeze")
inject() {
  local route=/_sim/faults/routes/events:ingest
  case $1 in
    0) admin PUT "$route" '{"error_ratio":1,"error_status":503}' ;;
    1) admin PUT "$route" '{"latency":"3s"}' ;;
    2) admin PUT "$route" '{"malformed_ratio":1}' ;;
    3) admin PUT "$route" '{"error_ratio":1,"error_status":429}' ;;
    4) admin POST /_sim/faults/outage "{\"mode\":\"refuse\",\"for\":\"${HALF}s\"}" ;;
    5) admin POST /_sim/faults/outage "{\"mode\":\"reset\",\"for\":\"${HALF}s\"}" ;;
    6) admin POST /_sim/faults/stall '{"for":"5s"}' ;;
  esac
}

# "requests ok dropped" from one scrape.
scrape() {
  curl -sf "$METRICS" | awk '
    /^polar_loadd_requests_total\{/ { all += $NF; if ($0 ~ /outcome="ok"/) ok += $NF }
    /^polar_loadd_arrivals_dropped_total\{/ { dropped += $NF }
    END { printf "%d %d %d\n", all, ok, dropped }'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

echo "polar-loadd at ${RATE}/s against polar-sim for ${MINUTES} min; a fault in the second half of every ${PERIOD} s"
printf '%7s  %-28s %8s %5s %9s %7s %9s\n' seconds phase rss_MiB fds req/s ok% dropped
start=$(date +%s)
end=$((start + MINUTES * 60))
read -r prev_all prev_ok prev_dropped < <(scrape)
prev_t=$(date +%s.%N)
cycle=0
fault_on=0
warm_rss="" ref_rss="" ref_fds="" last_clean_rss="" status=0 clean_ends=0 max_rss=0 max_fds=0
next=$((start + SAMPLE))
while [ "$next" -le "$end" ]; do
  # Switch faults on and off at the half-period boundaries between samples.
  while :; do
    now=$(date +%s)
    [ "$now" -ge "$next" ] && break
    t=$((now - start))
    cycle=$((t / PERIOD))
    if [ $((t % PERIOD)) -ge "$HALF" ] && [ "$fault_on" -eq 0 ]; then
      inject $((cycle % ${#FAULTS[@]})); fault_on=1
    elif [ $((t % PERIOD)) -lt "$HALF" ] && [ "$fault_on" -eq 1 ]; then
      admin DELETE /_sim/faults; fault_on=0
    fi
    sleep 0.2
  done
  kill -0 "$loadd" 2>/dev/null || { echo "polar-loadd died:" >&2; tail -20 "$WORK/loadd.err" >&2; exit 1; }
  t=$((next - start))  # the scheduled time: the phase logic does not drift with slow scrapes
  rss=$(rss_kib "$loadd")
  nfd=$(fds "$loadd")
  read -r all ok dropped < <(scrape)
  now_t=$(date +%s.%N)
  rate=$(awk -v a="$all" -v b="$prev_all" -v t0="$prev_t" -v t1="$now_t" \
    'BEGIN { printf "%.0f", (a - b) / (t1 - t0) }')
  okp=$(awk -v a="$all" -v b="$prev_all" -v o="$ok" -v p="$prev_ok" \
    'BEGIN { n = a - b; printf "%.1f", (n > 0) ? (o - p) / n * 100 : 0 }')
  # The sample that ends a half: the fault of this cycle, or clean (faults just cleared or not yet on).
  in_cycle=$(( (t - 1) % PERIOD ))
  if [ "$in_cycle" -ge "$HALF" ]; then
    phase="fault: ${FAULTS[$(( ((t - 1) / PERIOD) % ${#FAULTS[@]} ))]}"
  else
    phase=clean
  fi
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss
  [ "$nfd" -gt "$max_fds" ] && max_fds=$nfd
  # The last sample of a clean half: the checks.
  if [ "$phase" = clean ] && [ $(( (t - 1) % PERIOD + SAMPLE )) -ge "$HALF" ]; then
    clean_ends=$((clean_ends + 1))
    last_clean_rss=$rss
    if [ "$clean_ends" -eq 2 ]; then warm_rss=$rss; ref_fds=$nfd; fi
    # After the first round: every fault has happened once.
    if [ "$clean_ends" -eq $((${#FAULTS[@]} + 1)) ]; then ref_rss=$rss; fi
    if [ -n "$ref_fds" ] && [ "$nfd" -gt $((ref_fds + 4)) ]; then
      echo "  fds not back: $nfd > $ref_fds + 4" >&2; status=1
    fi
    if [ "$clean_ends" -ge 2 ] && awk -v r="$rate" -v g="$RATE" -v o="$okp" -v d="$((dropped - prev_dropped))" \
      'BEGIN { exit !(r < g * 0.95 || o < 100 || d > 0) }'; then
      echo "  not back on schedule: $rate/s, $okp % ok, $((dropped - prev_dropped)) arrivals dropped" >&2
      status=1
    fi
    phase="clean (end)"
  fi
  printf '%7d  %-28s %8.1f %5d %9s %7s %9d\n' "$t" "$phase" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" \
    "$nfd" "$rate" "$okp" "$dropped"
  prev_all=$all prev_ok=$ok prev_dropped=$dropped prev_t=$now_t
  next=$((next + SAMPLE))
done
admin DELETE /_sim/faults || true

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / a * 100 }'; }
echo "requests: $all ($ok ok), dropped arrivals: $dropped; polar-loadd up for $(( $(date +%s) - start )) s"
echo "fds: ${ref_fds:-?} at the end of the second clean half, peak ${max_fds}; RSS peak $(mib "$max_rss") MiB"
rounds=$((${#FAULTS[@]} + 2))
if [ -z "$ref_rss" ] || [ "$clean_ends" -lt "$rounds" ]; then
  [ -n "$warm_rss" ] && echo "RSS: $(mib "$warm_rss") MiB at the end of the second clean half, \
$(mib "$last_clean_rss") MiB at the last ($(pct "$warm_rss" "$last_clean_rss") %)"
  echo "too short for the growth verdict: it needs a clean half after a second round of all" \
    "${#FAULTS[@]} faults (MINUTES >= $(( (rounds - 1) * PERIOD / 60 + 1 )) at PERIOD=$PERIOD)"
else
  growth=$(pct "$ref_rss" "$last_clean_rss")
  echo "RSS: $(mib "$warm_rss") MiB at the end of the second clean half; $(mib "$ref_rss") MiB after the" \
    "first round of faults ($(pct "$warm_rss" "$ref_rss") %: the high-water mark); $(mib "$last_clean_rss") MiB" \
    "at the last clean sample, after the second round (${growth} %, goal < ${GROWTH_PCT} %)"
  awk -v g="$growth" -v l="$GROWTH_PCT" 'BEGIN { exit !(g < l) }' || status=1
fi
[ "$status" -eq 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit "$status"
