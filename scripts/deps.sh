#!/bin/sh
# scripts/deps.sh check|install build|run|test: the Debian packages Stellar
# needs to build (build), to run the example app (run: also python3, for its
# Python task), and to build and test it (test: also redis-server and the
# tools the suites use).
#
#   check    says which are missing and exits 1 if any is. `make` runs
#            this: building never installs anything.
#   install  installs the missing ones with apt-get (through sudo when not
#            root), and for test also the pinned npm packages of the node
#            suites (tests/interop, tests/browser) when node and npm are
#            here. `make deps` runs this; `make run` and `make test` call it.
set -e
usage() {
    echo "usage: $0 check|install build|run|test" >&2
    exit 2
}
[ $# -eq 2 ] || usage
mode=$1 what=$2
case $mode in check | install) ;; *) usage ;; esac
case $what in build | run | test) ;; *) usage ;; esac
cd "$(dirname "$0")/.."

pkgs="cmake gcc libc6-dev make pkg-config libjansson-dev libsqlite3-dev libhiredis-dev libmicrohttpd-dev"
# python3: the example app's Python task (make run), the cron oracle test.
[ "$what" != build ] && pkgs="$pkgs python3"
# lua5.1: luac, for the syntax check of the Redis backend's Lua scripts.
# jq: the command-task suite reads `stellar --json` output with it.
[ "$what" = test ] && pkgs="$pkgs lua5.1 jq"
[ "$what" = test ] && pkgs="$pkgs redis-server"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing="$missing $p"
    done
elif [ "$mode" = install ]; then
    echo "make deps: not a Debian system (no dpkg-query); install the" \
        "equivalents of:$pkgs" >&2
    exit 1
fi

if [ "$mode" = check ]; then
    [ -z "$missing" ] && exit 0
    echo "make: missing Debian packages:$missing" >&2
    echo "make: 'make deps' installs them (apt-get, through sudo when not" \
        "root); 'make run' and 'make test' do that first" >&2
    exit 1
fi

if [ -n "$missing" ]; then
    echo "make deps: installing the Debian packages Stellar needs to $what:$missing" \
        "(apt-get install)" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086 # $missing is a list of names.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
[ "$what" = test ] || exit 0

# The node suites' pinned packages (package-lock.json), installed when
# node_modules is missing or older than the lock file. Without node or npm,
# or when npm ci fails (offline), those suites skip and `make test` lists
# them at its end.
for dir in tests/interop tests/browser; do
    [ ! -d "$dir/node_modules" ] ||
        [ -n "$(find "$dir/package-lock.json" -newer "$dir/node_modules")" ] ||
        continue
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "make deps: no node or npm: not installing $dir's packages;" \
            "its suite will be skipped" >&2
        continue
    fi
    echo "make deps: npm ci --prefix $dir (its pinned packages, for its suite)" >&2
    if ! npm ci --prefix "$dir" --no-audit --no-fund >/dev/null; then
        rm -rf "$dir/node_modules" # so that the next run tries again
        echo "make deps: npm ci --prefix $dir failed; its suite will be" \
            "skipped" >&2
    fi
done
