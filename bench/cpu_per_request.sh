#!/usr/bin/env bash
# CPU time per request, side by side in one run against the same nginx endpoint
# (POST /v1/events/ingest with the same one-event body, a fixed 200 answer):
#   wrk    at its maximum (1 thread, CONNECTIONS connections)
#   hey    at its maximum (CONNECTIONS workers)
#   Locust FastHttpUser, headless, CONNECTIONS users without wait time (its maximum)
#   polar-loadd, open loop at RATE/s (default 20,000/s), with its built-in HTTP/1.1 client
#   polar-loadd-curl, the same with target.http_client = "curl" (libcurl for every request)
#   polar-loadd-slack0, the built-in client with daemon.timer_slack = "0s" (one wake-up per arrival)
# Each tool runs SECONDS seconds alone; its CPU (user + system, whole process tree) comes from
# /usr/bin/time and its request count from nginx's access log, so every tool is judged by what
# the target actually received. Goal: polar-loadd <= 2x wrk, and below hey and Locust, while
# nginx received at least 99 % of its RATE x SECONDS_PER_TOOL requests (an open-loop run that
# fell behind would look cheap per request). Exits 1 if the goal is missed or a tool sent nothing.
#   bench/cpu_per_request.sh                 # full run (~2.5 min)
#   SECONDS_PER_TOOL=5 bench/cpu_per_request.sh   # smoke run
source "$(dirname "$0")/lib.sh"

SECONDS_PER_TOOL=${SECONDS_PER_TOOL:-20}
RATE=${RATE:-20000}
CONNECTIONS=${CONNECTIONS:-32}

ensure_built
"$ROOT/scripts/deps" bench
start_nginx
url=$NGINX_URL/v1/events/ingest

cat >"$WORK/post.lua" <<EOT
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
EOT
cat >"$WORK/locustfile.py" <<EOT
from locust import task
from locust.contrib.fasthttp import FastHttpUser

BODY = '''$BODY'''


class Ingest(FastHttpUser):
    @task
    def ingest(self):
        self.client.post("/v1/events/ingest", data=BODY,
                         headers={"Content-Type": "application/json"})
EOT
loadd_config "$NGINX_URL" "$RATE" "$WORK/loadd.toml"
LOADD_HTTP_CLIENT=curl loadd_config "$NGINX_URL" "$RATE" "$WORK/loadd-curl.toml"
LOADD_TIMER_SLACK=0s loadd_config "$NGINX_URL" "$RATE" "$WORK/loadd-slack0.toml"

declare -A cpu reqs
run() {
  local name=$1
  shift
  local before after
  before=$(log_lines)
  /usr/bin/time -f '%U %S' -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || true
  after=$(log_lines)
  cpu[$name]=$(cpu_of "$WORK/$name.time")
  reqs[$name]=$((after - before))
}

run wrk wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_TOOL}s" -s "$WORK/post.lua" "$url"
run hey hey -z "${SECONDS_PER_TOOL}s" -c "$CONNECTIONS" -m POST -T application/json -d "$BODY" "$url"
run locust /usr/bin/python3 -m locust -f "$WORK/locustfile.py" --headless -u "$CONNECTIONS" \
  -r "$CONNECTIONS" -t "${SECONDS_PER_TOOL}s" -H "$NGINX_URL" --only-summary
run polar-loadd "$BIN/polar-loadd" --config "$WORK/loadd.toml" --once --duration "${SECONDS_PER_TOOL}s"
run polar-loadd-curl "$BIN/polar-loadd" --config "$WORK/loadd-curl.toml" --once --duration "${SECONDS_PER_TOOL}s"
run polar-loadd-slack0 "$BIN/polar-loadd" --config "$WORK/loadd-slack0.toml" --once --duration "${SECONDS_PER_TOOL}s"

wrk_us=$(awk -v c="${cpu[wrk]}" -v n="${reqs[wrk]}" 'BEGIN { printf "%.3f", c / n * 1e6 }')
printf '%-18s %10s %10s %12s %14s %10s\n' tool requests "req/s" "cpu s" "cpu us/req" "vs wrk"
for name in wrk hey locust polar-loadd polar-loadd-curl polar-loadd-slack0; do
  awk -v name="$name" -v c="${cpu[$name]}" -v n="${reqs[$name]}" -v s="$SECONDS_PER_TOOL" -v w="$wrk_us" '
    BEGIN { us = n ? c / n * 1e6 : 0; printf "%-18s %10d %10.0f %12.2f %14.2f %9.2fx\n", name, n, n / s, c, us, us / w }'
done
echo "(polar-loadd at ${RATE}/s open loop; the others at their maximum with $CONNECTIONS connections)"

status=0
for name in wrk hey locust polar-loadd; do
  if [ "${reqs[$name]}" -le 0 ]; then
    echo "$name: no request reached nginx (see $name.err)" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] || exit 1
us() { awk -v c="${cpu[$1]}" -v n="${reqs[$1]}" 'BEGIN { printf "%.3f", c / n * 1e6 }'; }
loadd_us=$(us polar-loadd)
verdict=$(awk -v l="$loadd_us" -v w="$wrk_us" -v h="$(us hey)" -v k="$(us locust)" \
  -v n="${reqs[polar-loadd]}" -v want="$((RATE * SECONDS_PER_TOOL))" 'BEGIN {
    if (n < 0.99 * want) { printf "NOT met: nginx received %d of %d requests from polar-loadd", n, want; exit }
    if (l > 2 * w) { printf "NOT met: %.2f us > 2x wrk (%.2f us)", l, 2 * w; exit }
    if (l >= h) { printf "NOT met: %.2f us >= hey (%.2f us)", l, h; exit }
    if (l >= k) { printf "NOT met: %.2f us >= Locust (%.2f us)", l, k; exit }
    printf "met" }')
echo "goal (polar-loadd <= 2x wrk, below hey and Locust): $verdict"
[ "$verdict" = met ]
