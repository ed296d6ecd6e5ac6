#!/usr/bin/env bash
# The systemd unit passes `systemd-analyze verify` and rates 1.5 or lower ("OK") in
# `systemd-analyze security --offline=true`, and keeps the settings the daemon relies on.
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
sed "s#/usr/bin/polar-loadd#$bin#" "$unit" >"$tmp/polar-loadd.service"
if ! out=$(cd "$tmp" && systemd-analyze verify --man=no polar-loadd.service 2>&1) || [ -n "$out" ]; then
  fail "systemd-analyze verify is not clean: $out"
fi

# --threshold=15 is an exposure of 1.5 (the scale is 0-100 here, 0.0-10.0 in the printout).
score=$(systemd-analyze security --offline=true --threshold=15 "$unit" 2>&1 | tail -n1) ||
  fail "exposure above 1.5: $score"
echo "$score"

# The settings the daemon and the docs rely on.
for want in 'Type=notify' 'WatchdogSec=' 'ExecReload=/bin/kill -HUP $MAINPID' \
  'Restart=on-failure' 'RestartPreventExitStatus=78' 'DynamicUser=yes' \
  'LoadCredential=polar-token' 'LoadCredential=webhook-secret' 'ProtectSystem=strict'; do
  # A line that starts with $want.
  awk -v w="$want" 'index($0, w) == 1 { found = 1 } END { exit !found }' "$unit" ||
    fail "missing: $want"
done
# The example config reads the token where LoadCredential=polar-token puts it.
grep -q '^token_file = "/run/credentials/polar-loadd.service/polar-token"' \
  "$src/packaging/polar-loadd.toml" || fail "packaging/polar-loadd.toml: token_file does not match the credential"
# The stop timeout leaves room for the default shutdown_grace (10 s).
stop=$(sed -nE 's/^TimeoutStopSec=([0-9]+)s$/\1/p' "$unit")
[ -n "$stop" ] && [ "$stop" -gt 10 ] || fail "TimeoutStopSec must exceed the 10 s default shutdown_grace"
echo "unit file OK"
