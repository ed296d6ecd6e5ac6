#!/usr/bin/env bash
# The systemd units (polar-loadd.service and the instance template polar-loadd@.service) pass
# `systemd-analyze verify` and rate 1.5 or lower ("OK") in `systemd-analyze security
# --offline=true`, and keep the settings the daemon relies on; the template has exactly the
# service's hardening.
# No systemd needs to run: both commands work on the file.
#   unit_file_test.sh SOURCE_DIR POLAR_LOADD_BINARY
set -euo pipefail
src=$1
bin=$2
unit=$src/packaging/polar-loadd.service
fail() { echo "FAIL: $*" >&2; exit 1; }

# verify checks that ExecStart= exists; point it at the build until the package installs it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in polar-loadd.service polar-loadd@.service; do
  file=$src/packaging/$name
  sed "s#/usr/bin/polar-loadd#$bin#g" "$file" >"$tmp/$name"
  # A template is verified as an instance of itself.
  instance=${name/@./@0.}
  if ! out=$(cd "$tmp" && systemd-analyze verify --man=no "$instance" 2>&1) || [ -n "$out" ]; then
    fail "$name: systemd-analyze verify is not clean: $out"
  fi

  # --threshold=15 is an exposure of 1.5 (the scale is 0-100 here, 0.0-10.0 in the printout).
  score=$(systemd-analyze security --offline=true --threshold=15 "$file" 2>&1 | tail -n1) ||
    fail "$name: exposure above 1.5: $score"
  echo "$score"

  # The settings the daemon and the docs rely on.
  for want in 'Type=notify' 'WatchdogSec=' 'ExecReload=/usr/bin/polar-loadd --reload $MAINPID' \
    'Restart=on-failure' 'RestartPreventExitStatus=64 78' 'DynamicUser=yes' \
    'LoadCredential=polar-token' 'LoadCredential=webhook-secret' 'ProtectSystem=strict'; do
    # A line that starts with $want.
    awk -v w="$want" 'index($0, w) == 1 { found = 1 } END { exit !found }' "$file" ||
      fail "$name: missing: $want"
  done
done
unit=$src/packaging/polar-loadd.service
template=$src/packaging/polar-loadd@.service

# The template differs from the service only above the credentials: same credentials, user and
# hardening, line for line.
tail_of() { sed -n '/^LoadCredential=polar-token/,$p' "$1" | grep -v '^#'; }
diff <(tail_of "$unit") <(tail_of "$template") >"$tmp/hardening.diff" ||
  fail "polar-loadd@.service's hardening differs from polar-loadd.service: $(cat "$tmp/hardening.diff")"
# The instance name is the shard; the token path is the instance's own credential directory.
grep -qx 'Environment=POLAR_LOADD_SHARD=%i' "$template" || fail "template: POLAR_LOADD_SHARD=%i missing"
grep -qx 'Environment=POLAR_LOADD_TOKEN_FILE=%d/polar-token' "$template" ||
  fail "template: POLAR_LOADD_TOKEN_FILE=%d/polar-token missing"
# Every POLAR_LOADD_* variable the template mentions is one the daemon reads.
for var in $(grep -o 'POLAR_LOADD_[A-Z_]*' "$template" | sort -u); do
  grep -rq --include='*.cc' "\"$var\"" "$src/daemon" || fail "template: the daemon does not read $var"
done
# The example config reads the token where LoadCredential=polar-token puts it, in the folder of
# whichever unit runs it; so do the commented control token and webhook secret.
for line in 'token_file = "${CREDENTIALS_DIRECTORY}/polar-token"' \
  '# token_file = "${CREDENTIALS_DIRECTORY}/control-token"' \
  '# secret_file = "${CREDENTIALS_DIRECTORY}/webhook-secret"'; do
  grep -qxF "$line" "$src/packaging/polar-loadd.toml" ||
    fail "packaging/polar-loadd.toml: no line $line (the credentials the units load)"
done
# The stop timeout leaves room for the default shutdown_grace (10 s).
stop=$(sed -nE 's/^TimeoutStopSec=([0-9]+)s$/\1/p' "$unit")
[ -n "$stop" ] && [ "$stop" -gt 10 ] || fail "TimeoutStopSec must exceed the 10 s default shutdown_grace"
# A failure that comes back at once (exit 69, a port held by another program) must trip the start
# limit instead of restarting forever: StartLimitBurst starts, RestartSec apart, fit in
# StartLimitIntervalSec with room for each start (allow 5 s of start-up each).
for file in "$unit" "$template"; do
  interval=$(sed -nE 's/^StartLimitIntervalSec=([0-9]+)s$/\1/p' "$file")
  burst=$(sed -nE 's/^StartLimitBurst=([0-9]+)$/\1/p' "$file")
  restart=$(sed -nE 's/^RestartSec=([0-9]+)s$/\1/p' "$file")
  [ -n "$interval" ] && [ -n "$burst" ] && [ -n "$restart" ] ||
    fail "$(basename "$file"): StartLimitIntervalSec=Ns, StartLimitBurst=N and RestartSec=Ns expected"
  [ $((burst * (restart + 5))) -lt "$interval" ] ||
    fail "$(basename "$file"): $burst starts ${restart} s apart do not fit in ${interval} s: the limit never trips"
  grep -q '^RestartPreventExitStatus=.*\b69\b' "$file" &&
    fail "$(basename "$file"): 69 is retried a few times (a port can come free), not prevented"
done

# The encrypted-credentials drop-in (shipped as an example) clears LoadCredential= and must name
# again every credential the units load, or they would silently be gone; with it the units still
# verify.
dropin=$src/packaging/credentials-encrypted.conf
loaded=$(sed -nE 's/^LoadCredential=([a-z-]+)$/\1/p' "$unit" | sort)
relisted=$(sed -nE 's/^LoadCredential(Encrypted)?=([a-z-]+)$/\2/p' "$dropin" | sort)
[ "$loaded" = "$relisted" ] ||
  fail "credentials-encrypted.conf names [$(echo $relisted)], the unit loads [$(echo $loaded)]"
grep -qx 'LoadCredential=' "$dropin" || fail "credentials-encrypted.conf does not clear LoadCredential="
for name in polar-loadd.service polar-loadd@.service; do
  mkdir -p "$tmp/$name.d"
  cp "$dropin" "$tmp/$name.d/"
  instance=${name/@./@0.}
  if ! out=$(cd "$tmp" && systemd-analyze verify --man=no "$instance" 2>&1) || [ -n "$out" ]; then
    fail "$name with credentials-encrypted.conf: systemd-analyze verify is not clean: $out"
  fi
done
echo "unit file OK"
