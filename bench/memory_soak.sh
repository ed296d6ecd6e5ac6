#!/usr/bin/env bash
# Memory: polar-loadd's resident memory at RATE/s (default 20,000/s) against a fast loopback
# nginx, sampled every SAMPLE seconds for MINUTES minutes. Goal: RSS under 64 MiB, and growth
# under 1 % between minute 2 and the end (minute 10 in the full run). Exits 1 if either fails.
#   bench/memory_soak.sh                       # the full run (10 min)
#   MINUTES=1 SAMPLE=5 bench/memory_soak.sh    # a smoke run (compares 30 s with the end)
source "$(dirname "$0")/lib.sh"

MINUTES=${MINUTES:-10}
RATE=${RATE:-20000}
SAMPLE=${SAMPLE:-10}
# The reference point: minute 2, or the middle of a shorter smoke run.
REF=${REF:-$(( MINUTES >= 4 ? 120 : MINUTES * 30 ))}

ensure_built
start_nginx
loadd_config "$NGINX_URL" "$RATE" "$WORK/loadd.toml"
"$BIN/polar-loadd" --config "$WORK/loadd.toml" 2>"$WORK/loadd.err" &
loadd=$!
PIDS+=("$loadd")

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

echo "seconds  rss_MiB  requests"
start=$(date +%s)
ref_rss=""
max_rss=0
last_rss=0
end=$((start + MINUTES * 60))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep "$SAMPLE"
  kill -0 "$loadd" 2>/dev/null || { echo "polar-loadd died:" >&2; cat "$WORK/loadd.err" >&2; exit 1; }
  now=$(( $(date +%s) - start ))
  rss=$(rss_kib "$loadd")
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss
  last_rss=$rss
  if [ -z "$ref_rss" ] && [ "$now" -ge "$REF" ]; then ref_rss=$rss; fi
  printf '%7d  %7.1f  %s\n' "$now" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(wc -l <"$NGINX_LOG")"
done
growth=$(awk -v a="$ref_rss" -v b="$last_rss" 'BEGIN { printf "%.2f", (b - a) / a * 100 }')
max_mib=$(awk -v k="$max_rss" 'BEGIN { printf "%.1f", k / 1024 }')
echo "max RSS ${max_mib} MiB (goal < 64); growth from ${REF} s to the end ${growth}% (goal < 1%)"
awk -v m="$max_rss" -v g="$growth" 'BEGIN { exit !(m < 64 * 1024 && g < 1) }'
