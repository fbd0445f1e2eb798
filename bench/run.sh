#!/bin/bash
# bench/run.sh BUILD: `make bench`. Runs every workload on Stellar (SQLite,
# Redis) and on node-resque 9 against one private redis-server (TCP
# loopback for both), plus the limits (redis-benchmark; SQLite alone),
# BENCH_RUNS times (3), interleaved; then prints the table of medians and
# writes BUILD/bench.json. See bench/README.md.
#
# Knobs (environment): BENCH_RUNS (3), BENCH_N jobs per throughput run
# (20000), BENCH_LAT_N latency samples (200), BENCH_DELAYED_N (200),
# BENCH_ONLY (e.g. "sqlite redis": skip the other systems), BENCH_CMD_N
# command-task jobs (2000).
set -euo pipefail

BUILD=$(cd "${1:-build-bench}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$BUILD/bench/stellar_bench
STELLAR=$BUILD/stellar
RUNS=${BENCH_RUNS:-3}
N=${BENCH_N:-20000}
LAT_N=${BENCH_LAT_N:-200}
DELAYED_N=${BENCH_DELAYED_N:-200}
ONLY=${BENCH_ONLY:-sqlite redis node limit command}
RESULTS=$BUILD/bench-results.jsonl
TMP=$(mktemp -d /tmp/stellar-bench.XXXXXX)
REDIS_PID=
SERVE_PID=

cleanup() {
    [ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    [ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ------------------------------------------------------------- Redis ---
command -v redis-server >/dev/null || { log "bench: redis-server is not on PATH"; exit 1; }
for try in 1 2 3 4 5 6 7 8 9 10; do
    PORT=$((20000 + (RANDOM % 20000)))
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP" --logfile "$TMP/redis.log" &
    REDIS_PID=$!
    for i in $(seq 50); do
        redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.05
    done
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=
done
[ -n "$REDIS_PID" ] || { log "bench: cannot start redis-server"; exit 1; }
REDIS_URL="redis://127.0.0.1:$PORT"
rcli() { redis-cli -p "$PORT" "$@"; }

# ------------------------------------------------------- node-resque ---
NODE_OK=0
if want node; then
    if command -v node >/dev/null && command -v npm >/dev/null; then
        if [ ! -d "$HERE/node/node_modules/node-resque" ]; then
            log "bench: installing node-resque (npm ci in bench/node)"
            (cd "$HERE/node" && npm ci --no-audit --no-fund >/dev/null)
        fi
        NODE_OK=1
    else
        log "bench: node/npm not found: node-resque columns will read n/a"
    fi
fi

# ------------------------------------------------------------- Results ---
: >"$RESULTS"
emit() { # sys test json
    printf '{"sys":"%s","test":"%s","res":%s}\n' "$1" "$2" "$3" >>"$RESULTS"
    log "  $1 $2 $3"
}
os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}" || uname -s)
nr_version=$( [ $NODE_OK = 1 ] && node -p 'require(process.argv[1]).version' \
    "$HERE/node/node_modules/node-resque/package.json" || echo n/a)
emit meta meta "$(printf '{"date":"%s","os":"%s","cpus":"%s","redis":"%s","node":"%s","node_resque":"%s","stellar":"%s","n":"%s"}' \
    "$(date -u +%Y-%m-%d)" "$os" "$(nproc)" \
    "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')" \
    "$( [ $NODE_OK = 1 ] && node --version || echo n/a)" "$nr_version" \
    "$(sed -n 's/^#define STELLAR_VERSION "\(.*\)"/\1/p' "$HERE/../include/stellar.h")" "$N")"

fresh() { # sys -> a URL on empty storage
    case $1 in
    sqlite) rm -f "$TMP/bench.db" "$TMP/bench.db-wal" "$TMP/bench.db-shm"
            echo "sqlite:$TMP/bench.db" ;;
    *) rcli flushall >/dev/null; echo "$REDIS_URL" ;;
    esac
}

stellar_runs() { # sys
    local s=$1 u p
    emit "$s" enqueue1 "$("$BENCH" enqueue "$(fresh "$s")" "$N" 1)"
    emit "$s" enqueue8 "$("$BENCH" enqueue "$(fresh "$s")" "$N" 8)"
    emit "$s" batch "$("$BENCH" batch "$(fresh "$s")" "$N" 1000)"
    for p in 1 4 8; do
        emit "$s" "process$p" "$("$BENCH" process "$(fresh "$s")" "$N" "$p")"
    done
    # Issue 15: the same with a concurrency limit that never binds.
    emit "$s" process8lim "$("$BENCH" process-limited "$(fresh "$s")" "$N" 8)"
    emit "$s" latency "$("$BENCH" latency "$(fresh "$s")" "$LAT_N" 8)"
    emit "$s" delayed "$("$BENCH" delayed "$(fresh "$s")" "$DELAYED_N" 8)"
}

nb() { fresh node >/dev/null; node "$HERE/node/bench.js" "$1" "$PORT" "$2" "$3"; }

node_runs() {
    local p
    emit node enqueue1 "$(nb enqueue "$N" 1)"
    emit node enqueue8 "$(nb enqueue "$N" 8)"
    emit node batch "$(nb enqueue "$N" 1000)"
    for p in 1 4 8; do
        emit node "process$p" "$(nb process "$N" "$p")"
    done
    emit node latency "$(nb latency "$LAT_N" 8)"
    emit node delayed "$(nb delayed "$DELAYED_N" 8)"
}

# ------------------------------------------------------------------ RSS ---
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# Starts a daemon (command line in "$@") whose log says it is ready with
# `ready_re`, then: RSS after 2 s idle, then the peak (VmHWM) after
# BENCH_N jobs went through it. Prints {"idle_mib", "peak_mib"}.
rss_of() { # url ready_re cmd...
    local url=$1 re=$2 idle peak i
    shift 2
    "$@" >"$TMP/daemon.log" 2>&1 &
    SERVE_PID=$!
    for i in $(seq 600); do
        grep -qE "$re" "$TMP/daemon.log" && break
        kill -0 "$SERVE_PID" 2>/dev/null || { cat "$TMP/daemon.log" >&2; exit 1; }
        sleep 0.05
    done
    sleep 2
    idle=$(kib "$SERVE_PID" VmRSS)
    "$BENCH" load "$url" "$N" >/dev/null
    peak=$(kib "$SERVE_PID" VmHWM)
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" || true
    SERVE_PID=
    printf '{"idle_mib":%s,"peak_mib":%s}' \
        "$(awk -v k="$idle" 'BEGIN { printf "%.2f", k / 1024 }')" \
        "$(awk -v k="$peak" 'BEGIN { printf "%.2f", k / 1024 }')"
}

APP=$TMP/app
mkdir -p "$APP/modules/bench/tasks"
cat >"$APP/stellar.json" <<'EOF'
{ "tasks": { "queues": ["bench"], "maxTaskProcessors": 8, "scheduler": true } }
EOF
cat >"$APP/modules/bench/tasks/noop.c" <<'EOF'
#include <stellar.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    (void)next;
    return STELLAR_OK;
}

STELLAR_TASK(noop) = {
    .name = "noop",
    .description = "does nothing (bench)",
    .queue = "bench",
    .run = run,
};
EOF

rss_runs() {
    local u
    if want sqlite; then
        u=$(fresh sqlite)
        emit sqlite rss "$(rss_of "$u" "started" "$STELLAR" run --app "$APP" --backend "$u" --processors 8)"
    fi
    if want redis; then
        u=$(fresh redis)
        emit redis rss "$(rss_of "$u" "started" "$STELLAR" run --app "$APP" --backend "$u" --processors 8)"
    fi
    if [ $NODE_OK = 1 ]; then
        u=$(fresh node)
        emit node rss "$(rss_of "$u" '"ready"' node "$HERE/node/bench.js" serve "$PORT" 8)"
    fi
}

# --------------------------------------------------------------- Limits ---
# One Lua call doing what a Resque worker does for one job: node-resque's
# popAndStoreJob (LPOP, working-on record with the payload decoded and
# re-encoded) plus the ack (INCR processed twice, DEL the record).
LUA_JOB="local p = redis.call('lpop', KEYS[1])
if p then
  local w = {run_at = ARGV[1], queue = ARGV[2], payload = cjson.decode(p), worker = ARGV[3]}
  redis.call('set', KEYS[2], cjson.encode(w))
end
redis.call('incr', KEYS[3])
redis.call('incr', KEYS[4])
redis.call('del', KEYS[2])
return p"
LUA_FILL="for i = 1, tonumber(ARGV[1]) do redis.call('rpush', KEYS[1], ARGV[2]) end"
PAYLOAD='{"class":"noop","queue":"bench","args":[{"i":12345}]}'

rb_rate() { # redis-benchmark args... -> requests per second
    redis-benchmark -h 127.0.0.1 -p "$PORT" --csv "$@" 2>/dev/null |
        awk -F'","' 'NR > 1 || $1 !~ /^"test/ { gsub(/"/, "", $2); if ($2 + 0 > 0) { print $2; exit } }'
}

limit_runs() {
    local n=$((N * 10)) sha
    fresh redis >/dev/null
    emit limit lpush "{\"rate\":$(rb_rate -c 8 -n "$n" -t lpush)}"
    fresh redis >/dev/null
    emit limit lpush_pipelined "{\"rate\":$(rb_rate -c 8 -n $((n * 5)) -P 100 -t lpush)}"
    fresh redis >/dev/null
    sha=$(rcli script load "$LUA_JOB")
    rcli eval "$LUA_FILL" 1 resque:queue:bench "$n" "$PAYLOAD" >/dev/null
    emit limit lua "{\"rate\":$(rb_rate -c 8 -n "$n" evalsha "$sha" 4 \
        resque:queue:bench resque:worker:w:bench resque:stat:processed \
        resque:stat:processed:w "Sun Nov 29 2026 02:20:19 GMT+0000 (Coordinated Universal Time)" \
        bench w)}"
    emit limit sqlite "$("$BENCH" sqlite-limit "$TMP/limit.db" "$N")"
}

# ------------------------------------------------------------------ Run ---
start=$(date +%s)
for run in $(seq "$RUNS"); do
    log "bench: run $run of $RUNS (redis at 127.0.0.1:$PORT)"
    want sqlite && stellar_runs sqlite
    want redis && stellar_runs redis
    [ $NODE_OK = 1 ] && node_runs
    want limit && limit_runs
    rss_runs
done
log "bench: $(($(date +%s) - start)) s"
"$BENCH" report "$RESULTS" "$BUILD/bench.json"

# ------------------------------------------------------ Command tasks ---
# A command task whose command is `true`, 8 TaskProcessors on SQLite,
# beside spawning `true` from 8 threads, in the same run (bench/command.c):
# the median ratio of the runs; the target is >= 0.7.
if want command; then
    rows=""
    for run in $(seq "$RUNS"); do
        mkdir -p "$TMP/command.$run"
        rows="$rows$("$BUILD/bench/stellar_bench_command" "$TMP/command.$run" "${BENCH_CMD_N:-2000}" 8)
"
    done
    printf '%s' "$rows" >>"$BUILD/bench-command.jsonl"
    printf '%s' "$rows" | sort -t: -k6 -n | awk -F'[:,}]' -v runs="$RUNS" '
        NR == int((runs + 1) / 2) {
            printf "\n| command tasks, 8 TaskProcessors, SQLite | jobs/s | spawn `true`, 8 threads | ratio |\n"
            printf "|---|---:|---:|---:|\n"
            printf "| command task running `true` | %.0f/s | %.0f/s | %.2fx |\n", $6, $8, $10
        }'
fi
