#!/usr/bin/env bash
# scripts/demo as a newcomer uses it: it prints the metrics URL, the request counter is rising
# within 10 s of the start (the demo's own progress line and two scrapes say so), and Ctrl-C (SIGINT
# to the demo's whole process group, as a terminal sends it) stops polar-sim and polar-loadd.
# POLAR_DEMO_PREBUILT=1 makes the demo use the build/bin binaries this build tree already has,
# instead of reconfiguring the tree the other tests are running from. The demo binds the shipped
# config's fixed ports (metrics 9477, webhooks 9478), which the kernel never hands out as free ports
# to the other tests (they are below the ephemeral range). Bounded: 40 s in all.
#   demo_test.sh SOURCE_DIR
set -euo pipefail
src=$1
out=$(mktemp /tmp/polar-demo-test-XXXXXX)
pgid=""
fail() {
  echo "FAIL: $*" >&2
  echo "--- demo output:" >&2
  cat "$out" >&2
  exit 1
}
cleanup() {
  [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null
  rm -f "$out"
}
trap cleanup EXIT

for port in 9477 9478; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is already in use (another demo or polar-loadd running here?)"
  fi
done

start_ms=$(( $(date +%s%N) / 1000000 ))
elapsed_ms() { echo $(( $(date +%s%N) / 1000000 - start_ms )); }
# setsid: the demo leads its own process group, like a shell job in a terminal.
POLAR_DEMO_PREBUILT=1 setsid "$src/scripts/demo" >"$out" 2>&1 </dev/null &
pgid=$!

# The first progress line comes 5 s after the metrics URL is printed.
metrics_url=""
progress=""
while [ "$(elapsed_ms)" -lt 10000 ]; do
  metrics_url=$(grep -oE 'metrics at http://[^ ]+/metrics' "$out" | head -n1 | cut -d' ' -f3 || true)
  progress=$(grep -E '^[0-9:]{8}  requests: [0-9]+  ok: [0-9]+$' "$out" | head -n1 || true)
  [ -n "$progress" ] && break
  kill -0 "$pgid" 2>/dev/null || fail "the demo exited by itself"
  sleep 0.2
done
[ -n "$metrics_url" ] || fail "no metrics URL printed within 10 s"
[ -n "$progress" ] || fail "no progress line within 10 s"
echo "metrics URL: $metrics_url; first progress line after $(elapsed_ms) ms: $progress"
total=$(awk '{print $3}' <<<"$progress")
ok=$(awk '{print $5}' <<<"$progress")
[ "$total" -gt 0 ] || fail "the first progress line counts no requests"
[ "$ok" -eq "$total" ] || fail "not every request was ok: $progress"

count() {
  curl -s --max-time 2 "$metrics_url" |
    awk '/^polar_loadd_requests_total/ {s += $2} END {printf "%d", s}'
}
first=$(count)
sleep 1
second=$(count)
echo "scraped polar_loadd_requests_total: $first, then $second a second later"
[ "$second" -gt "$first" ] || fail "the request counter is not rising ($first, then $second)"

# Ctrl-C.
kill -INT -- "-$pgid"
for _ in $(seq 100); do
  pgrep -g "$pgid" >/dev/null || break
  sleep 0.1
done
if pgrep -g "$pgid" >/dev/null; then
  ps -o pid,comm -g "$pgid" >&2 || true
  fail "processes of the demo still run 10 s after Ctrl-C"
fi
pgid=""
grep -q '^demo stopped$' "$out" || fail "the demo did not say it stopped"
for port in 9477 9478; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is still served after Ctrl-C"
  fi
done
echo "PASS: Ctrl-C stopped polar-sim and polar-loadd"
