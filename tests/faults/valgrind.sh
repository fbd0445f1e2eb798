#!/bin/sh
# valgrind.sh FAULT_WORKER: 10,000 jobs through fault_worker (4 processors)
# under valgrind's memcheck, on SQLite and (with redis-server on PATH and a
# libstellar built with hiredis) on a private Redis: any memory error or
# leak fails (--error-exitcode=1). Skipped (77) unless STELLAR_VALGRIND=1
# and valgrind is on PATH. STELLAR_VALGRIND_JOBS changes the count.
set -eu
worker=${1:?usage: valgrind.sh FAULT_WORKER}
jobs=${STELLAR_VALGRIND_JOBS:-10000}
if [ "${STELLAR_VALGRIND:-}" != 1 ]; then
    echo "skip: set STELLAR_VALGRIND=1 to run $jobs jobs under valgrind"
    exit 77
fi
if ! command -v valgrind >/dev/null 2>&1; then
    echo "skip: valgrind is not on PATH"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stellar-valgrind-XXXXXX")
redis_pid=""
cleanup() {
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

run() { # run URL
    valgrind --leak-check=full --error-exitcode=1 --quiet \
        "$worker" --url "$1" --processors 4 --run-jobs "$jobs"
    echo "ok - $jobs jobs on $1 under valgrind: no errors, no leaks"
}

run "sqlite:$tmp/stellar.db"

if command -v redis-server >/dev/null 2>&1; then
    redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' \
        --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
    redis_pid=$!
    tries=0
    until [ -S "$tmp/redis.sock" ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 500 ]; then
            echo "redis-server did not start" >&2
            exit 1
        fi
        sleep 0.02
    done
    if "$worker" --url "redis+unix://$tmp/redis.sock" --run-jobs 1 \
        --processors 1 >/dev/null 2>&1; then
        # A fresh database for the counted run.
        kill "$redis_pid"
        wait "$redis_pid" 2>/dev/null || true
        rm -f "$tmp/redis.sock"
        redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' \
            --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
        redis_pid=$!
        tries=0
        until [ -S "$tmp/redis.sock" ] || [ "$tries" -gt 500 ]; do
            tries=$((tries + 1))
            sleep 0.02
        done
        run "redis+unix://$tmp/redis.sock"
    else
        echo "skip - redis: fault_worker cannot use it (built without hiredis?)"
    fi
fi
