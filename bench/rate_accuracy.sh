#!/usr/bin/env bash
# Rate accuracy: does polar-loadd hold its configured rate, as seen by the target?
# For each rate, polar-loadd runs one shot against a fast loopback nginx; the achieved rate is
# counted from nginx's access log over a DURATION window that starts WARMUP seconds after the
# first request. Target: within ±0.5 % over 60 s at 10/s, 1,000/s and 20,000/s.
# Exits 1 if a rate misses the goal (GOAL_PCT, default 0.5) or a polar-loadd run fails; 0 only
# when every rate met it.
#   bench/rate_accuracy.sh                      # the full benchmark (~4 min)
#   DURATION=10 RATES="10 1000" bench/rate_accuracy.sh   # a smoke run
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-60}
WARMUP=${WARMUP:-5}
RATES=${RATES:-"10 1000 20000"}
GOAL_PCT=${GOAL_PCT:-0.5}

ensure_built
start_nginx

printf '%-10s %-10s %-12s %-10s %s\n' "target/s" "window s" "received" "achieved/s" "error"
worst=0
status=0
for rate in $RATES; do
  cfg=$WORK/rate-$rate.toml
  loadd_config "$NGINX_URL" "$rate" "$cfg"
  before=$(log_lines)
  rc=0
  "$BIN/polar-loadd" --config "$cfg" --once --duration "$((WARMUP + DURATION + 2))s" \
    >"$WORK/rate-$rate.out" 2>"$WORK/rate-$rate.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "polar-loadd at $rate/s exited $rc:" >&2
    tail -5 "$WORK/rate-$rate.err" >&2
    status=1
  fi
  sleep 1.2
  # The window is measured in the target's clock: from the first request of this run + WARMUP,
  # shifted by half a gap so that its edges fall between two arrivals, not on one.
  result=$(tail -n +"$((before + 1))" "$NGINX_LOG" | awk -v w="$WARMUP" -v d="$DURATION" -v r="$rate" '
    NR == 1 { start = $1 + w + 0.5 / r; end = start + d }
    $1 >= start && $1 < end { n++ }
    END { a = n / d; printf "%d %.3f %+.3f%%", n, a, (a - r) / r * 100 }')
  read -r received achieved error <<<"$result"
  printf '%-10s %-10s %-12s %-10s %s\n' "$rate" "$DURATION" "$received" "$achieved" "$error"
  e=${error#[+-]}; e=${e%\%}
  worst=$(awk -v a="$worst" -v b="$e" 'BEGIN { print (b > a) ? b : a }')
done
if awk -v w="$worst" -v g="$GOAL_PCT" 'BEGIN { exit !(w <= g) }'; then
  echo "worst deviation: ${worst}% (goal: within ${GOAL_PCT}%): met"
else
  echo "worst deviation: ${worst}% (goal: within ${GOAL_PCT}%): NOT met"
  status=1
fi
exit "$status"
