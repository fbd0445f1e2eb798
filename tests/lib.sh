# tests/lib.sh: what the shell suites share. Sourced after `set -euo
# pipefail`; then `suite_tmp NAME` makes the suite's folder.
#
#   $tmp        the suite's folder: removed when it passed (passed=1),
#               else kept, with the last lines of each *.log in it shown
#               (DEBUG lines left out)
#   run_pid run2_pid redis_pid pids   processes killed (SIGKILL) at exit;
#               wait_until fails at once when run_pid or run2_pid has died
#   on_exit     called first at exit, if the suite defines it
#   fail ok st now wait_until start_private_redis copy_example_app   below
passed=0 run_pid="" run2_pid="" redis_pid="" pids=()

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
st() { "$STELLAR_BIN" "$@"; }

# NOW = wall clock in ms, without forking.
now() { local us=${EPOCHREALTIME/[.,]/}; NOW=$((10#$us / 1000)); }

# wait_until TIMEOUT_MS COMMAND...: polls every $poll_s seconds (0.05
# unless the suite sets it); 1 at the deadline.
wait_until() {
    # Its locals start with _: COMMAND may name the caller's (bash scopes
    # variables dynamically).
    local _deadline _pid
    now; _deadline=$((NOW + $1)); shift
    until "$@"; do
        for _pid in "$run_pid" "$run2_pid"; do
            if [ -n "$_pid" ] && ! kill -0 "$_pid" 2>/dev/null; then
                fail "stellar run (pid $_pid) exited while waiting for: $*"
            fi
        done
        now; [ "$NOW" -le "$_deadline" ] || return 1
        sleep "${poll_s:-0.05}"
    done
}

lib_cleanup() {
    local pid f
    if declare -F on_exit >/dev/null; then on_exit || true; fi
    for pid in "$run_pid" "$run2_pid" "$redis_pid" "${pids[@]}"; do
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "$passed" = 1 ]; then
        rm -rf "$tmp"
        return
    fi
    for f in "$tmp"/*.log; do
        [ -f "$f" ] || continue
        echo "--- last lines of ${f##*/} ---" >&2
        grep -v ' DEBUG ' "$f" | tail -n 40 >&2 || true
    done
    echo "(kept $tmp)" >&2
}

# suite_tmp NAME: $tmp, and the clean-up above at exit.
suite_tmp() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/stellar-$1-XXXXXX")
    trap lib_cleanup EXIT
}

# start_private_redis: a redis-server on a unix socket in $tmp, no
# persistence; exports STELLAR_BACKEND for it. Exit 77 without one.
start_private_redis() {
    command -v redis-server >/dev/null 2>&1 || { echo "skip: no redis-server"; exit 77; }
    redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' \
        --appendonly no >"$tmp/redis.log" 2>&1 &
    redis_pid=$!
    wait_until 10000 test -S "$tmp/redis.sock" || fail "redis-server did not start"
    export STELLAR_BACKEND="redis+unix://$tmp/redis.sock"
}

# copy_example_app DEST [all]: a fresh copy of examples/app in DEST,
# without its store or built tasks. Without "all" its command tasks are
# left out: every 10 s the periodic checkDisk queues a countWords job,
# which the suites that count jobs and failures exactly do not expect.
copy_example_app() {
    [ -d "$STELLAR_SRC/examples/app" ] || fail "no examples/app"
    cp -r "$STELLAR_SRC/examples/app" "$1"
    rm -rf "$1"/stellar.db* "$1/.stellar"
    [ "${2:-}" = all ] ||
        rm -f "$1"/modules/*/tasks/*.json "$1"/modules/*/tasks/*.py "$1"/modules/*/tasks/*.sh
}
