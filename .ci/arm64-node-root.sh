#!/usr/bin/env bash
# Puts Debian's arm64 Node.js (the nodejs package, Node 18 on Debian 12) and the libraries it needs into a folder,
# for running the linux-arm64 prebuild under qemu-user on an x86-64 machine:
#
#   bash .ci/arm64-node-root.sh /tmp/arm64-root
#   RNNKIT_ARM64_ROOT=/tmp/arm64-root bash .ci/prebuild-linux.sh arm64
#
# Needs root (dpkg --add-architecture arm64, apt-get update) and installs qemu-user; the arm64 packages are only
# downloaded and unpacked into the folder (dpkg -x), not installed.
set -euo pipefail

dest="${1:?usage: $0 DEST_DIR}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

export DEBIAN_FRONTEND=noninteractive
dpkg --add-architecture arm64
apt-get update
command -v qemu-aarch64 >/dev/null 2>&1 || apt-get install -y --no-install-recommends qemu-user

debs="$(mktemp -d)"
trap 'rm -rf "$debs"' EXIT
# The arm64 libraries nodejs depends on (recursively), and the architecture-independent packages whose JavaScript
# Debian's Node loads from /usr/share/nodejs (qemu's -L maps those absolute paths into the folder).
mapfile -t pkgs < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances --no-pre-depends nodejs:arm64 | grep -E '^[a-z0-9].*:arm64$' |
  grep -vE '^(dpkg|install-info|tar|openssl|debconf|perl-base):' | sort -u)
(cd "$debs" && chown _apt "$debs" 2>/dev/null || true
 cd "$debs" && apt-get download "${pkgs[@]}" node-acorn node-cjs-module-lexer node-undici)
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$dest"; done
qemu-aarch64 -L "$dest" -E "LD_LIBRARY_PATH=$dest/usr/lib/aarch64-linux-gnu:$dest/lib/aarch64-linux-gnu" \
  "$dest/usr/bin/node" -p '`arm64 node ${process.version} (N-API ${process.versions.napi}) in '"$dest"'`'
