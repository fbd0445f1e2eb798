#!/bin/sh
# run.sh INTEROP_DRIVER: the node-resque interop suite (interop.test.js).
# Skips (exit 77) without node, redis-server or tests/interop/node_modules,
# unless STELLAR_REQUIRE_INTEROP=1, where a missing piece fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
skip() {
    if [ "${STELLAR_REQUIRE_INTEROP:-0}" = 1 ]; then
        echo "interop test cannot run: $1 (STELLAR_REQUIRE_INTEROP=1)" >&2
        exit 1
    fi
    echo "skip: $1" >&2
    exit 77
}
[ $# -eq 1 ] || { echo "usage: $0 INTEROP_DRIVER" >&2; exit 2; }
command -v node >/dev/null 2>&1 || skip "node is not on PATH"
command -v redis-server >/dev/null 2>&1 || skip "redis-server is not on PATH"
[ -f "$here/node_modules/node-resque/package.json" ] &&
    [ -f "$here/node_modules/ioredis/package.json" ] ||
    skip "no tests/interop/node_modules (run: npm ci --prefix tests/interop)"
STELLAR_INTEROP_DRIVER=$1
export STELLAR_INTEROP_DRIVER
exec node --test-reporter=spec "$here/interop.test.js"
