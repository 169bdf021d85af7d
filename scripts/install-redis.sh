#!/usr/bin/env bash
# Print the path of a runnable redis-server for the test suite, installing one if needed.
#
# A redis-server on PATH is used as it is. Otherwise Debian's redis-server package (and any of
# its shared libraries this machine lacks) is downloaded with `apt-get download` and unpacked
# with `dpkg -x` into .cache/redis/ inside the checkout; nothing is installed system-wide. The
# printed path is then a small wrapper that points LD_LIBRARY_PATH at the unpacked libraries.
# Idempotent: a second run finds the wrapper and only prints its path. Exits non-zero, saying
# why on stderr, when no redis-server can be had.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.cache/redis"
wrapper="$dest/bin/redis-server"

fail() { echo "install-redis.sh: $*" >&2; exit 1; }

# One installer at a time: parallel test sessions share .cache/redis.
mkdir -p "$root/.cache"
exec 9>"$root/.cache/redis.lock"
flock 9 2>/dev/null || true

if command -v redis-server >/dev/null 2>&1; then
    command -v redis-server
    exit 0
fi
if [[ -x "$wrapper" ]] && "$wrapper" --version >/dev/null 2>&1; then
    echo "$wrapper"
    exit 0
fi

command -v apt-get >/dev/null || fail "no redis-server on PATH and no apt-get to fetch Debian's"
command -v dpkg >/dev/null || fail "no redis-server on PATH and no dpkg to unpack Debian's"

# Shared libraries redis-server links against, and the Debian package that ships each.
libs=(
    "liblzf.so.1 liblzf1"
    "libjemalloc.so.2 libjemalloc2"
    "libatomic.so.1 libatomic1"
    "libssl.so.3 libssl3"
    "libsystemd.so.0 libsystemd0"
)
packages=(redis-server redis-tools)
for entry in "${libs[@]}"; do
    read -r soname package <<<"$entry"
    if ! ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$soname "; then
        packages+=("$package")
    fi
done

rm -rf "$dest"
mkdir -p "$dest/debs" "$dest/root" "$dest/bin"
download() { (cd "$dest/debs" && apt-get download -q "${packages[@]}") >&2; }
if ! download; then
    # A fresh machine may have no package lists yet; only root can fetch them.
    [[ "$(id -u)" == 0 ]] || fail "apt-get download ${packages[*]} failed (run apt-get update?)"
    apt-get update -q >&2 || fail "apt-get update failed"
    download || fail "apt-get download ${packages[*]} failed"
fi
for deb in "$dest"/debs/*.deb; do
    dpkg -x "$deb" "$dest/root"
done

binary="$dest/root/usr/bin/redis-server"
[[ -e "$binary" ]] || fail "the redis-server package did not contain usr/bin/redis-server"
libdir="$dest/root/usr/lib/x86_64-linux-gnu:$dest/root/lib/x86_64-linux-gnu"
libdir="$libdir:$dest/root/usr/lib/$(uname -m)-linux-gnu:$dest/root/usr/lib"
missing="$(LD_LIBRARY_PATH="$libdir" ldd "$binary" | grep 'not found' || true)"
[[ -z "$missing" ]] || fail "redis-server still lacks shared libraries: $missing"

cat >"$wrapper" <<WRAPPER
#!/bin/sh
# Written by scripts/install-redis.sh: runs the redis-server unpacked beside this file.
LD_LIBRARY_PATH="$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$binary" "\$@"
WRAPPER
chmod +x "$wrapper"
"$wrapper" --version >/dev/null || fail "the unpacked redis-server does not run"
echo "$wrapper"
