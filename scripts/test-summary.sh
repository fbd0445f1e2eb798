#!/bin/sh
# scripts/test-summary.sh BUILD CTEST_LOG: the last lines of `make test`.
# Lists the tests that did not run (ctest: Skipped, exit code 77; Not Run;
# Disabled), each with the reason it printed (its "skip: ..." lines, from
# ctest's BUILD/Testing/Temporary/LastTest.log), so that a suite missing on
# this machine (node, npm, chromium, redis-server, valgrind) is not silent.
# CTEST_LOG is ctest's console output (ctest -O FILE). Always exits 0.
set -u
[ $# -eq 2 ] || { echo "usage: $0 BUILD CTEST_LOG" >&2; exit 2; }
build=$1 log=$2
last=$build/Testing/Temporary/LastTest.log
[ -r "$log" ] || exit 0

# ctest ends with "The following tests did not run:" and one line per test:
# "<TAB> 17 - faults.valgrind (Skipped)".
notrun=$(awk '
    /^The following tests did not run:/ { on = 1; next }
    on && /^[ \t]+[0-9]+ - / {
        sub(/^[ \t]+[0-9]+ - /, "")
        print
        next
    }
    on { on = 0 }
' "$log")
[ -n "$notrun" ] || exit 0

echo
echo "== These tests did not run (a skip is not a failure; the reasons):"
echo "$notrun" | while IFS= read -r line; do
    name=${line% (*}
    why=""
    if [ -r "$last" ]; then
        # The test's output: from "N/M Test: NAME" to "<end of output>";
        # its skip lines, else its last line.
        why=$(awk -v name="$name" '
            $0 ~ /^[0-9]+\/[0-9]+ Test: / {
                t = $0
                sub(/^[0-9]+\/[0-9]+ Test: /, "", t)
                on = (t == name)
                out = 0
                next
            }
            on && /^Output:$/ { out = 1; getline; next }
            on && /^<end of output>$/ { on = 0; next }
            on && out && NF {
                if (tolower($0) ~ /^skip/ && !seen[$0]++ && n < 3)
                    skips[++n] = $0
                lastline = $0
            }
            END {
                if (n) for (i = 1; i <= n; i++) print skips[i]
                else if (lastline != "") print lastline
            }
        ' "$last")
    fi
    printf '  %s\n' "$line"
    [ -n "$why" ] && printf '%s\n' "$why" | sed 's/^/      /'
done
case $notrun in
*interop.* | *browser.*)
    echo "  The node suites need node and npm (make test then installs their"
    echo "  pinned packages with npm ci), and the browser suite chromium."
    ;;
esac
exit 0
