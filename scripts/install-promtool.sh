#!/usr/bin/env bash
# Print the path of a runnable promtool for the test suite, installing one if needed.
#
# A promtool on PATH is used as it is. Otherwise Debian's prometheus package is downloaded with
# `apt-get download` and unpacked with `dpkg -x` into a staging directory; only its promtool
# binary (a static Go program) is kept, as .cache/promtool/bin/promtool inside the checkout, and
# the rest, the Prometheus server included, is deleted: nothing is installed system-wide and no
# Prometheus server can be started from here. Idempotent: a second run finds the binary and
# only prints its path. Exits non-zero, saying why on stderr, when no
# promtool can be had.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.cache/promtool"
binary="$dest/bin/promtool"

fail() { echo "install-promtool.sh: $*" >&2; exit 1; }

# One installer at a time: parallel test sessions share .cache/promtool.
mkdir -p "$root/.cache"
exec 9>"$root/.cache/promtool.lock"
flock 9 2>/dev/null || true

if command -v promtool >/dev/null 2>&1; then
    command -v promtool
    exit 0
fi
if [[ -x "$binary" ]] && "$binary" --version >/dev/null 2>&1; then
    echo "$binary"
    exit 0
fi

command -v apt-get >/dev/null || fail "no promtool on PATH and no apt-get to fetch Debian's"
command -v dpkg >/dev/null || fail "no promtool on PATH and no dpkg to unpack Debian's"

rm -rf "$dest"
mkdir -p "$dest/debs" "$dest/root" "$dest/bin"
download() { (cd "$dest/debs" && apt-get download -q prometheus) >&2; }
if ! download; then
    # A fresh machine may have no package lists yet; only root can fetch them.
    [[ "$(id -u)" == 0 ]] || fail "apt-get download prometheus failed (run apt-get update?)"
    apt-get update -q >&2 || fail "apt-get update failed"
    download || fail "apt-get download prometheus failed"
fi
dpkg -x "$dest"/debs/prometheus_*.deb "$dest/root"
[[ -e "$dest/root/usr/bin/promtool" ]] || fail "the prometheus package did not contain usr/bin/promtool"
mv "$dest/root/usr/bin/promtool" "$binary"
rm -rf "$dest/debs" "$dest/root"

"$binary" --version >/dev/null 2>&1 || fail "the unpacked promtool does not run"
echo "$binary"
