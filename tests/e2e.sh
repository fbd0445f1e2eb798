#!/usr/bin/env bash
# e2e.sh SCENARIO: drives the real `stellar` program as a user would.
#
#   new_app      stellar new + makeTask + run + enqueue: the new task runs
#   example_app  examples/app: enqueue, enqueueIn timing, bad input, stats,
#                failed, SIGTERM
#   embed        the embedding example program exits 0
#
# ctest passes STELLAR_BIN (build/stellar), STELLAR_SRC (the source tree)
# and STELLAR_EMBED_BIN in the environment. Each scenario works in its own
# temporary directory; every wait polls a condition with a deadline.
set -euo pipefail
export LC_ALL=C
unset STELLAR_BACKEND

scenario=${1:?usage: e2e.sh new_app|example_app|embed}
: "${STELLAR_BIN:?}" "${STELLAR_SRC:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stellar-e2e-XXXXXX")
run_pid=""
passed=0

cleanup() {
    if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
        kill -KILL "$run_pid" 2>/dev/null || true
    fi
    if [ "$passed" = 1 ]; then
        rm -rf "$tmp"
    else
        if [ -f "$tmp/run.log" ]; then
            echo "--- last lines of stellar run's output ---" >&2
            tail -n 40 "$tmp/run.log" >&2
        fi
        echo "(kept $tmp)" >&2
    fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# NOW = wall clock in ms, without forking.
now() { local us=${EPOCHREALTIME/[.,]/}; NOW=$((10#$us / 1000)); }

# wait_until TIMEOUT_MS COMMAND...: polls every 20 ms; fails early if
# `stellar run` has died.
wait_until() {
    local deadline
    now; deadline=$((NOW + $1)); shift
    until "$@"; do
        if [ -n "$run_pid" ] && ! kill -0 "$run_pid" 2>/dev/null; then
            fail "stellar run exited while waiting for: $*"
        fi
        now; [ "$NOW" -le "$deadline" ] || return 1
        sleep 0.02
    done
}

# has_line FILE LINE, with builtins only (used in the timing loop).
has_line() {
    local l
    [ -f "$1" ] || return 1
    while IFS= read -r l; do [ "$l" = "$2" ] && return 0; done <"$1"
    return 1
}

st() { "$STELLAR_BIN" "$@"; }

start_run() { # start_run APP_DIR
    (cd "$1" && exec "$STELLAR_BIN" run) >"$tmp/run.log" 2>&1 &
    run_pid=$!
}

stop_run() { # SIGTERM; `stellar run` must exit 0 within 30 s
    local rc=0 deadline
    kill -TERM "$run_pid"
    now; deadline=$((NOW + 30000))
    while kill -0 "$run_pid" 2>/dev/null; do
        now; [ "$NOW" -le "$deadline" ] || fail "stellar run still running 30 s after SIGTERM"
        sleep 0.02
    done
    wait "$run_pid" || rc=$?
    run_pid=""
    [ "$rc" = 0 ] || fail "stellar run exited $rc after SIGTERM, expected 0"
    ok "SIGTERM: stellar run exits 0"
}

stat_value() { # stat_value NAME: the counter from `stellar stats --json`, 0 if absent
    local v
    v=$(st stats --json | tr -d ' \n' | { grep -o "\"$1\":[0-9]*" || true; } | head -n1 | cut -d: -f2)
    echo "${v:-0}"
}

# ---------------------------------------------------------------- new_app ---
new_app() {
    cd "$tmp"
    st new myapp >/dev/null || fail "stellar new myapp"
    [ -f myapp/stellar.json ] || fail "stellar new wrote no myapp/stellar.json"
    [ -d myapp/modules ] || fail "stellar new wrote no myapp/modules"
    ok "stellar new myapp"
    cd myapp
    st makeTask greetUser --module=greeting >/dev/null || fail "stellar makeTask"
    [ -f modules/greeting/tasks/greetUser.c ] ||
        fail "makeTask wrote no modules/greeting/tasks/greetUser.c"
    ok "stellar makeTask greetUser --module=greeting"
    st tasks --json | grep -q '"greetUser"' || fail "stellar tasks does not list greetUser"
    ok "stellar tasks lists greetUser"

    start_run "$tmp/myapp"
    st enqueue greetUser '{"who":"e2e"}' || fail "stellar enqueue greetUser"
    # shellcheck disable=SC2016 # expanded by eval, at each poll
    wait_until 60000 eval '[ "$(stat_value processed)" -ge 1 ]' ||
        fail "greetUser did not run within 60 s (stats: $(st stats --json))"
    [ "$(stat_value failed)" = 0 ] || fail "greetUser failed: $(st failed --json)"
    ok "stellar run + enqueue: the new task ran"
    stop_run
}

# ------------------------------------------------------------ example_app ---
example_app() {
    local app=$tmp/app out=$tmp/out.txt err rc t0 t1 t2 lines
    [ -d "$STELLAR_SRC/examples/app" ] || fail "no examples/app"
    cp -r "$STELLAR_SRC/examples/app" "$app"
    rm -rf "$app"/stellar.db* "$app/.stellar"
    cd "$app"

    start_run "$app"
    st enqueue appendLine "{\"path\":\"$out\",\"line\":\"hello\"}" ||
        fail "stellar enqueue appendLine"
    wait_until 60000 has_line "$out" hello ||
        fail "appendLine did not write its line within 60 s"
    ok "enqueue appendLine: the line is in the file"

    # enqueueIn 1500 must start between 1.5 s and 2.0 s later.
    now; t0=$NOW
    st enqueueIn 1500 appendLine "{\"path\":\"$out\",\"line\":\"late\"}" ||
        fail "stellar enqueueIn"
    now; t1=$NOW
    wait_until 5000 has_line "$out" late || fail "enqueueIn 1500: no line after 5 s"
    now; t2=$NOW
    [ $((t2 - t0)) -ge 1500 ] || fail "enqueueIn 1500 ran after only $((t2 - t0)) ms"
    [ $((t2 - t1)) -le 2000 ] || fail "enqueueIn 1500 ran after $((t2 - t1)) ms (> 2000)"
    ok "enqueueIn 1500: started $((t2 - t1))..$((t2 - t0)) ms after the enqueue"

    # enqueueAt: a time in the past runs at once.
    now
    st enqueueAt $((NOW - 1000)) appendLine "{\"path\":\"$out\",\"line\":\"at\"}" ||
        fail "stellar enqueueAt"
    wait_until 3000 has_line "$out" at || fail "enqueueAt (past) did not run within 3 s"
    ok "enqueueAt"

    # Bad input: one line on stderr, exit code 2, nothing queued.
    for args in "enqueue appendLine {bad" "enqueueIn -5 appendLine" "enqueue appendLine {} default --no-such-flag"; do
        rc=0
        # shellcheck disable=SC2086
        err=$(st $args 2>&1 >/dev/null) || rc=$?
        [ "$rc" = 2 ] || fail "stellar $args: exit $rc, expected 2"
        lines=$(printf '%s\n' "$err" | grep -c .)
        [ "$lines" = 1 ] || fail "stellar $args: $lines lines on stderr, expected 1: $err"
    done
    ok "bad JSON, negative delay, unknown flag: exit 2 with a one-line error"

    # A failing task: listed by failed, counted by stats.
    st enqueue failAlways || fail "stellar enqueue failAlways"
    wait_until 10000 eval 'st failed --json | grep -q "failAlways"' ||
        fail "failAlways is not in stellar failed --json: $(st failed --json)"
    [ "$(stat_value failed)" -ge 1 ] || fail "stats --json: failed < 1: $(st stats --json)"
    [ "$(stat_value processed)" -ge 3 ] || fail "stats --json: processed < 3: $(st stats --json)"
    st failed >/dev/null || fail "stellar failed (table)"
    st stats >/dev/null || fail "stellar stats (table)"
    ok "failAlways: in stellar failed --json, counted by stellar stats --json"

    lines=$(grep -c . "$out")
    [ "$lines" = 3 ] || fail "$out has $lines lines, expected 3 (a job ran twice?)"
    stop_run
}

# ------------------------------------------------------------------ embed ---
embed() {
    local bin=${STELLAR_EMBED_BIN:-} rc=0
    [ -n "$bin" ] || fail "STELLAR_EMBED_BIN is not set"
    [ -x "$bin" ] || fail "embed example not built (${bin:-unset})"
    cd "$tmp"
    timeout 120 "$bin" >"$tmp/run.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || fail "$bin exited $rc"
    ok "examples/embed exits 0"
}

case $scenario in
new_app | example_app | embed) "$scenario" ;;
*) fail "unknown scenario $scenario" ;;
esac
passed=1
