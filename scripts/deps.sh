#!/bin/sh
# Installs the Debian packages Stellar needs, if any is missing.
# Usage: scripts/deps.sh build|test
set -e
pkgs="cmake gcc make pkg-config libjansson-dev libsqlite3-dev libhiredis-dev libmicrohttpd-dev"
[ "$1" = test ] && pkgs="$pkgs redis-server"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
