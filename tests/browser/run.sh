#!/bin/sh
# run.sh SERVE_BIN SCREENSHOT_DIR: the dashboard test (dashboard.test.mjs)
# in Debian's chromium, driven by playwright-core. Skips (exit 77) without
# node, chromium or tests/browser/node_modules, unless
# STELLAR_REQUIRE_BROWSER=1, where a missing piece fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
skip() {
    if [ "${STELLAR_REQUIRE_BROWSER:-0}" = 1 ]; then
        echo "browser test cannot run: $1 (STELLAR_REQUIRE_BROWSER=1)" >&2
        exit 1
    fi
    echo "skip: $1" >&2
    exit 77
}
[ $# -eq 2 ] || { echo "usage: $0 SERVE_BIN SCREENSHOT_DIR" >&2; exit 2; }
command -v node >/dev/null 2>&1 || skip "node is not on PATH"
chromium=${STELLAR_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || skip "no chromium at $chromium (apt-get install chromium)"
[ -d "$here/node_modules/playwright-core" ] ||
    skip "no tests/browser/node_modules (run: npm ci --prefix tests/browser)"
STELLAR_SERVE_BIN=$1 STELLAR_SCREENSHOTS=$2 STELLAR_CHROMIUM=$chromium
export STELLAR_SERVE_BIN STELLAR_SCREENSHOTS STELLAR_CHROMIUM
exec node --test-reporter=spec "$here/dashboard.test.mjs"
