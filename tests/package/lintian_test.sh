#!/usr/bin/env bash
# Debian's own checker accepts the .deb: `lintian` finds no error and no warning that is not
# overridden in packaging/deb/lintian-overrides, every override there has a reason (the comment
# above it) and is still needed (lintian reports an override that matches nothing), and the
# changelog's newest entry, the copyright file and the control file agree on version and maintainer.
# Info-level tags (I:) are printed for the record.
#   lintian_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v lintian >/dev/null || fail "lintian is not installed (scripts/deps test)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$build" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; fail "cpack"; }
deb=$(ls "$tmp"/out/polar-loadd_*.deb)
echo "built $(basename "$deb")"

# Every override has a reason: the line above it is a comment (or another override of one group).
overrides=$src/packaging/deb/lintian-overrides
awk '/^[^#[:space:]]/ && prev !~ /^#/ && prev !~ /^[^#[:space:]]/ { print "line " NR ": " $0; bad = 1 }
     { prev = $0 } END { exit bad }' "$overrides" ||
  fail "packaging/deb/lintian-overrides: an override without a comment giving its reason (above)"

# --pedantic and --display-info print everything; only errors, warnings and stale overrides fail.
lintian --pedantic --display-info --show-overrides "$deb" >"$tmp/lintian.log" 2>&1 || true
grep -v '^running with root privileges' "$tmp/lintian.log" || true
if grep -E '^(E|W): ' "$tmp/lintian.log" >"$tmp/bad"; then
  fail "lintian: $(wc -l <"$tmp/bad") error(s) or warning(s) not overridden: $(cat "$tmp/bad")"
fi
if grep -E 'unused-override|mismatched-override' "$tmp/lintian.log" >"$tmp/stale"; then
  fail "lintian: overrides that match nothing (remove them): $(cat "$tmp/stale")"
fi

# The changelog's newest entry is this version, signed by the package's maintainer.
version=$(dpkg-deb -f "$deb" Version)
maintainer=$(dpkg-deb -f "$deb" Maintainer)
dpkg-deb -x "$deb" "$tmp/root"
doc=$tmp/root/usr/share/doc/polar-loadd
top=$(zcat "$doc/changelog.Debian.gz" | head -n1)
[[ "$top" == "polar-loadd ($version) "* ]] ||
  fail "changelog.Debian.gz starts with '$top', not version $version (packaging/deb/changelog)"
zcat "$doc/changelog.Debian.gz" | grep -m1 '^ -- ' | grep -qF -- " -- $maintainer  " ||
  fail "the changelog's newest entry is not signed by the Maintainer, $maintainer"
grep -qF "Upstream-Contact: $maintainer" "$doc/copyright" ||
  fail "copyright's Upstream-Contact is not the Maintainer, $maintainer"
for page in man1/polar-loadd.1.gz man1/polar-sim.1.gz man5/polar-loadd.toml.5.gz; do
  [ -f "$tmp/root/usr/share/man/$page" ] || fail "no man page /usr/share/man/$page"
done
echo "lintian OK: no error, no warning left unexplained ($(grep -c '^O: ' "$tmp/lintian.log" || true) overridden)"
