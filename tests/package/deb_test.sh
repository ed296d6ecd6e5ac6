#!/usr/bin/env bash
# The .deb builds, installs with dpkg -i (enabling and starting nothing), runs from /usr/bin, keeps
# its config as a conffile, and dpkg -P removes every trace. Needs root (dpkg); CI runs as root.
#
# Hermetic where the kernel allows it (CI's Debian 12 as root does): the round trip runs in a
# private mount namespace in which /etc, /usr and /var are overlays whose changes go to a tmpfs
# that disappears with the test, and /run is that empty tmpfs, so the maintainer scripts'
# systemctl calls (guarded by [ -d /run/systemd/system ]) never reach the machine's systemd. The
# machine's own dpkg database, files and services are never touched, a polar-loadd already
# installed there is purged only inside the namespace, an operator's /etc/credstore stays, and
# other checkouts running this test at the same moment each have their own. Where no private
# mount namespace or overlay can be had (a container without CAP_SYS_ADMIN), it runs on the
# machine itself: one round trip at a time (a machine-wide lock), and not over an
# installed polar-loadd.
# Exit 77 (ctest: skipped) only when not root, or, on the machine itself, when polar-loadd is
# already installed (the test will not replace an operator's installation).
#   deb_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: installing a .deb needs root (dpkg -i); CI runs this test as root"
  exit 77
fi

# POLAR_DEB_TEST_NAMESPACE carries the mount namespace the test was started in; the re-executed
# test mounts only when it runs in another one (never in the machine's, whatever the environment).
ns=$(readlink /proc/self/ns/mnt || true)
if [ -z "${POLAR_DEB_TEST_NAMESPACE:-}" ] && [ -n "$ns" ] &&
  unshare --mount --propagation private true 2>/dev/null; then
  exec unshare --mount --propagation private env POLAR_DEB_TEST_NAMESPACE="$ns" "$0" "$@"
fi
mode=machine
if [ -n "${POLAR_DEB_TEST_NAMESPACE:-}" ] && [ -n "$ns" ] && [ "$ns" != "$POLAR_DEB_TEST_NAMESPACE" ]; then
  # In our own mount namespace: nothing mounted here is seen outside it, and it all goes away
  # when the test's last process exits. A tmpfs over /run holds the overlays' upper layers and
  # hides the machine's /run (so /run/systemd/system is missing and systemctl stays quiet).
  if mount -t tmpfs -o mode=0755 polar-deb-test /run; then
    ok=1
    for d in etc usr var; do
      mkdir -p "/run/overlay/$d/upper" "/run/overlay/$d/work"
      mount -t overlay "polar-deb-test-$d" \
        -o "lowerdir=/$d,upperdir=/run/overlay/$d/upper,workdir=/run/overlay/$d/work" "/$d" ||
        { ok=0; break; }
    done
    if [ "$ok" -eq 1 ]; then
      mode=namespace
    else
      # Part of it mounted: undo, and run on the machine as if no namespace could be had.
      for d in var usr etc run; do umount "/$d" 2>/dev/null || true; done
    fi
  fi
fi
echo "deb_test: running in $([ "$mode" = namespace ] && echo "a private mount namespace (overlays on /etc, /usr, /var)" || echo "this machine's own dpkg database")"

if [ "$mode" = machine ]; then
  # One package round trip per machine at a time: other checkouts (worktrees) on this machine run
  # the same test, and two of them installing and purging one package would trip over each other.
  exec 9>/run/lock/polar-loadd-deb-test.lock
  flock -w 600 9 || { echo "FAIL: another deb_test.sh held the lock for 10 minutes" >&2; exit 1; }
  if dpkg-query -W -f='${Status}' polar-loadd 2>/dev/null | grep -q 'installed'; then
    echo "SKIPPED: polar-loadd is already installed on this machine; not replacing it"
    exit 77
  fi
fi

fail() { echo "FAIL: $*" >&2; exit 1; }
# dpkg refuses to run while apt or another dpkg holds its lock; wait up to 2 minutes for it.
dpkg_() {
  local i
  for i in $(seq 120); do
    if dpkg "$@" >"$tmp/dpkg.log" 2>&1; then cat "$tmp/dpkg.log"; return 0; fi
    grep -q "lock" "$tmp/dpkg.log" || { cat "$tmp/dpkg.log"; return 1; }
    sleep 1
  done
  cat "$tmp/dpkg.log"
  return 1
}
tmp=$(mktemp -d)
made_token=0
made=()  # directories this test created, removed again if still empty
for d in /etc/credstore /etc/systemd/system/multi-user.target.wants; do
  [ -d "$d" ] || made+=("$d")
done
cleanup() {
  dpkg_ -P polar-loadd >/dev/null 2>&1 || true
  [ "$made_token" -eq 1 ] && rm -f /etc/credstore/polar-token
  for d in "${made[@]}"; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
if [ "$mode" = namespace ] && dpkg-query -W -f='${Status}' polar-loadd 2>/dev/null | grep -q 'installed'; then
  # The machine has polar-loadd installed: remove it from the namespace's view only, so the round
  # trip starts from a machine without it. Its scripts see no systemd (/run/systemd is empty here).
  echo "polar-loadd is installed on this machine: purging it inside the namespace only"
  dpkg_ -P polar-loadd >/dev/null || fail "could not purge the installed polar-loadd inside the namespace"
fi

# 1. Build (into a private directory, so build/*.deb from scripts/package is left alone).
(cd "$build" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; fail "cpack"; }
deb=$(ls "$tmp"/out/polar-loadd_*.deb)
echo "built $(basename "$deb")"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/polar-loadd/polar-loadd.toml || fail "the config is not a conffile"
dpkg-deb -f "$deb" Depends | grep -q libcurl || fail "no shlibs dependencies: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#' >"$tmp/files"

# 2. Install: nothing enabled, nothing started, a note on how to.
dpkg_ -i "$deb" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "dpkg -i"; }
grep -q "not enabled and not started" "$tmp/install.log" || fail "no note on how to enable: $(cat "$tmp/install.log")"
grep -q "systemctl enable --now polar-loadd" "$tmp/install.log" || fail "the note does not say how to enable"
[ ! -e /etc/systemd/system/multi-user.target.wants/polar-loadd.service ] || fail "enabled on install"
version=$(/usr/bin/polar-loadd --version) || fail "/usr/bin/polar-loadd --version"
echo "$version"
[[ "$version" == "polar-loadd "* ]] || fail "unexpected --version: $version"
/usr/bin/polar-sim --help >/dev/null || fail "/usr/bin/polar-sim --help"
LOAD_TEST_API_TOKEN=polar_oat_package_test /usr/bin/polar-loadd --check-config \
  --config /etc/polar-loadd/polar-loadd.toml || fail "the installed config is not valid"
out=$(systemd-analyze verify --man=no /usr/lib/systemd/system/polar-loadd.service 2>&1) && [ -z "$out" ] ||
  fail "installed unit: $out"
# The instance template (docs/operations.md, "Scaling out"): installed, verifies as an instance, and the shared
# config with the instance's POLAR_LOADD_SHARD is valid once it names a count.
out=$(systemd-analyze verify --man=no polar-loadd@1.service 2>&1) && [ -z "$out" ] ||
  fail "installed template polar-loadd@.service: $out"
POLAR_LOADD_SHARD=1 POLAR_LOADD_SHARDS=3 LOAD_TEST_API_TOKEN=polar_oat_package_test \
  /usr/bin/polar-loadd --check-config --config /etc/polar-loadd/polar-loadd.toml ||
  fail "the installed config is not valid as shard 1 of 3"
[ -f /usr/share/doc/polar-loadd/examples/kubernetes/statefulset.yaml ] || fail "no Kubernetes examples"
[ -f /usr/share/doc/polar-loadd/README.md ] || fail "no README in /usr/share/doc/polar-loadd"
# The binary embeds Chart.js (MIT): its notice travels with it, in the copyright file.
grep -q "^Copyright: .* Chart.js Contributors" /usr/share/doc/polar-loadd/copyright ||
  fail "no Chart.js paragraph in /usr/share/doc/polar-loadd/copyright"
# The manual the README links to, beside it (postinst points at docs/operations.md).
[ -f /usr/share/doc/polar-loadd/docs/operations.md ] || fail "no docs/ in /usr/share/doc/polar-loadd"
# grafana/README.md's layout: dashboards/, grafana-provisioning/, rules/ (without the promtool tests).
for pair in dashboards:dashboards provisioning:grafana-provisioning rules:rules; do
  from=${pair%%:*}
  to=${pair#*:}
  [ -d "$src/grafana/$from" ] || continue
  for f in $(cd "$src/grafana/$from" && find . -type f ! -path './tests/*'); do
    [ -f "/usr/share/polar-loadd/$to/$f" ] || fail "grafana/$from/$f is not installed as /usr/share/polar-loadd/$to/$f"
  done
done
[ ! -d "$src/grafana/rules/tests" ] || [ ! -e /usr/share/polar-loadd/rules/tests ] || fail "promtool tests were packaged"
if [ -f "$src/packaging/prometheus.yml" ]; then
  [ -f /usr/share/doc/polar-loadd/examples/prometheus.yml ] || fail "no example prometheus.yml"
fi
if [ -f "$src/packaging/alertmanager.yml" ]; then
  [ -f /usr/share/doc/polar-loadd/examples/alertmanager.yml ] || fail "no example alertmanager.yml"
fi

# 3. An operator's traces: an edited config, a credential, an enablement link, a drop-in.
echo "# edited by the operator" >>/etc/polar-loadd/polar-loadd.toml
if [ ! -e /etc/credstore/polar-token ]; then
  install -d -m 0700 /etc/credstore
  (umask 077; printf '%s' polar_oat_package_test >/etc/credstore/polar-token)
  made_token=1
fi
mkdir -p /etc/systemd/system/multi-user.target.wants /etc/systemd/system/polar-loadd.service.d
ln -sf /usr/lib/systemd/system/polar-loadd.service \
  /etc/systemd/system/multi-user.target.wants/polar-loadd.service
printf '[Service]\nEnvironment=X=1\n' >/etc/systemd/system/polar-loadd.service.d/override.conf
mkdir -p /etc/systemd/system/polar-loadd@.service.d
ln -sf /usr/lib/systemd/system/polar-loadd@.service \
  /etc/systemd/system/multi-user.target.wants/polar-loadd@2.service
printf '[Service]\nEnvironment=X=1\n' >/etc/systemd/system/polar-loadd@.service.d/override.conf

# 4. Remove keeps the configuration; purge removes everything.
dpkg_ -r polar-loadd >"$tmp/remove.log" 2>&1 || { cat "$tmp/remove.log"; fail "dpkg -r"; }
[ ! -e /usr/bin/polar-loadd ] || fail "dpkg -r left /usr/bin/polar-loadd"
grep -q "edited by the operator" /etc/polar-loadd/polar-loadd.toml || fail "dpkg -r lost the edited config"
dpkg_ -P polar-loadd >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg -P"; }
! dpkg-query -W polar-loadd >/dev/null 2>&1 || fail "dpkg still knows polar-loadd"
for gone in /etc/polar-loadd /etc/systemd/system/multi-user.target.wants/polar-loadd.service \
  /etc/systemd/system/polar-loadd.service.d /etc/systemd/system/multi-user.target.wants/polar-loadd@2.service \
  /etc/systemd/system/polar-loadd@.service.d /usr/share/polar-loadd /usr/share/doc/polar-loadd; do
  [ ! -e "$gone" ] && [ ! -L "$gone" ] || fail "purge left $gone"
done
if [ "$made_token" -eq 1 ]; then
  [ ! -e /etc/credstore/polar-token ] || fail "purge left /etc/credstore/polar-token"
  made_token=0
fi
while read -r f; do
  [ -d "$f" ] && continue  # shared directories (/usr/bin, ...) stay
  [ ! -e "$f" ] || fail "purge left $f"
done <"$tmp/files"
echo "package OK: builds, installs, runs from /usr/bin, purges cleanly"
