#!/usr/bin/env bash
# schedules.sh sqlite|redis: cron schedules (issue 14) on the real `stellar`
# program and real processes, on one backend.
#
#   bad       stellar.json schedules and task files refused at load
#   three     three `stellar run` processes with an every-2-seconds
#             schedule (6 fields) for 20 s: each tick queued exactly once,
#             none missing between the first and the last, and every job
#             queued is a job run (or still queued)
#   leader    SIGKILL of the scheduler leader right after a tick: the
#             others go on; no tick twice, none lost around the kill
#   missed    a downtime longer than the grace: "missed": "once" queues one
#             job for all the missed ticks, "skip" none; ticks within the
#             grace before the start are late, not missed, and run
#   paused    a "once" schedule paused (while running) over that downtime,
#             resumed just before the start: its paused ticks are skipped,
#             not missed, so no catch-up job
#
# Each process logs "schedule 'NAME': queued TASK on QUEUE for tick MS" for
# every tick it claimed (src/schedule.c): the test maps each job to its tick
# that way, and counts the jobs the probe task wrote. It tolerates lateness
# (a loaded machine, sanitizers) but never a duplicate. ctest passes
# STELLAR_BIN. Redis runs on a private redis-server on a unix socket in the
# test's folder. Exit 77: skipped (no jq, or no redis-server).
set -euo pipefail
export LC_ALL=C
unset STELLAR_BACKEND

backend=${1:?usage: schedules.sh sqlite|redis}
: "${STELLAR_BIN:?}"
command -v jq >/dev/null 2>&1 || { echo "skip: jq is not on PATH"; exit 77; }
. "$(dirname "$0")/../lib.sh"
suite_tmp schedules
app=$tmp/app
GRACE_MS=5000 # STELLAR_SCHEDULE_GRACE_MS
st() { (cd "$app" && "$STELLAR_BIN" "$@"); }

case $backend in
sqlite) ;;
redis) start_private_redis ;;
*) fail "unknown backend $backend" ;;
esac

# start_run N: `stellar run` number N of the app, logging to run-N.log.
start_run() {
    (cd "$app" && exec "$STELLAR_BIN" run --no-http --processors 2) \
        >"$tmp/run-$1.log" 2>&1 &
    pids[$1]=$!
    wait_until 60000 grep -qs 'started .*TaskProcessor' "$tmp/run-$1.log" ||
        fail "stellar run $1 did not start: $(cat "$tmp/run-$1.log")"
}

# stop_run N: SIGTERM; exit 0 within 60 s.
stop_run() {
    local pid=${pids[$1]} rc=0 deadline
    pids[$1]=""
    [ -n "$pid" ] || return 0
    kill -TERM "$pid"
    now; deadline=$((NOW + 60000))
    while kill -0 "$pid" 2>/dev/null; do
        now; [ "$NOW" -le "$deadline" ] || fail "stellar run $1 still running 60 s after SIGTERM"
        sleep 0.05
    done
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "stellar run $1 exited $rc after SIGTERM"
}

# ticks SCHEDULE LOG...: the ticks claimed in those logs, sorted.
ticks() {
    local s=$1; shift
    cat "$@" 2>/dev/null | grep "schedule '$s': queued " |
        sed 's/.* for tick \([0-9]*\).*/\1/' | sort -n || true
}

# check_ticks SCHEDULE WHAT LOG...: no tick twice, and consecutive ticks 2 s
# apart from the first to the last. Sets NTICKS.
check_ticks() {
    local s=$1 what=$2 list dups prev="" t
    shift 2
    list=$(ticks "$s" "$@")
    dups=$(printf '%s\n' "$list" | uniq -d)
    [ -z "$dups" ] || fail "$what: ticks of $s queued twice: $dups"
    NTICKS=0
    for t in $list; do
        if [ -n "$prev" ] && [ $((t - prev)) -ne 2000 ]; then
            fail "$what: $s: no job for the ticks between $prev and $t"
        fi
        prev=$t NTICKS=$((NTICKS + 1))
    done
}

# jobs_of S: the probe's runs of schedule S (lines of out.txt).
jobs_of() { grep -c "\"s\":\"$1\"" "$app/out.txt" 2>/dev/null || true; }
queued() { st length default --json | jq '.length // .'; }

# ------------------------------------------------------------ the app ---
cd "$tmp"
"$STELLAR_BIN" new app >/dev/null || fail "stellar new app"
mkdir -p "$app/modules/t/tasks"
cat >"$app/modules/t/tasks/probe.json" <<'JSON'
{"name": "probe", "description": "writes its params and the time",
 "command": ["./probe.sh"]}
JSON
cat >"$app/modules/t/tasks/probe.sh" <<'SH'
#!/bin/sh
line="$(cat) $(date +%s%3N)"
echo "$line" >>"$STELLAR_APP/out.txt"
SH
chmod +x "$app/modules/t/tasks/probe.sh"
# HTTP off; two every-2-seconds schedules, one per missed-tick policy, and
# "held" (on its own queue, out of the counts of three), paused for the
# downtime of missed.
jq '.tasks.shutdownTimeout = 5000 | del(.http) | .schedules = {
  "fast": {"cron": "*/2 * * * * *", "timezone": "UTC", "task": "probe",
           "params": {"s": "fast"}},
  "catchup": {"cron": "*/2 * * * * *", "timezone": "Europe/Berlin",
              "task": "probe", "params": {"s": "catchup"}, "missed": "once"},
  "held": {"cron": "*/2 * * * * *", "timezone": "UTC", "task": "probe",
           "params": {"s": "held"}, "queue": "held", "missed": "once"}}' \
    "$app/stellar.json" >"$app/s.json"
mv "$app/s.json" "$app/stellar.json"
st schedules >/dev/null || fail "stellar schedules: $(st schedules 2>&1)"

# ------------------------------------------------------------------ bad ---
# refused JQ_FILTER WANT...: stellar.json changed by the filter makes
# `stellar schedules` (as `stellar run`) exit 1 with every WANT in its
# message; then the good file is back.
refused() {
    local filter=$1 rc=0 err w
    shift
    cp "$app/stellar.json" "$tmp/good.json"
    jq "$filter" "$tmp/good.json" >"$app/stellar.json"
    err=$(st schedules 2>&1 >/dev/null) || rc=$?
    cp "$tmp/good.json" "$app/stellar.json"
    [ "$rc" = 1 ] || fail "bad: '$filter' exited $rc: $err"
    for w in "$@"; do
        [[ "$err" == *"$w"* ]] || fail "bad: '$filter': no '$w' in: $err"
    done
}
refused '.schedules.fast.cron = "*/2 25 * * *"' "stellar.json:" \
    "schedules.fast" "field 'cron'" "hour field"
refused '.schedules.fast.timezone = "Mars/Olympus"' "schedules.fast" "field 'timezone'"
refused '.schedules.fast.task = "nobody"' "schedules.fast" "unknown task 'nobody'"
refused '.schedules.fast.missed = "twice"' "schedules.fast.missed" "skip" "once"
refused '.schedules.fast.when = 1' "schedules.fast.when is not a setting"
refused 'del(.schedules.fast.cron)' "schedules.fast.cron is required"
refused '.schedules.fast.params = [1]' "schedules.fast.params must be an object"
# A task file with both cron and frequency.
printf '{"name": "both", "description": "d", "command": ["./probe.sh"], "cron": "* * * * *", "frequency": 1000}\n' \
    >"$app/modules/t/tasks/both.json"
rc=0; err=$(st schedules 2>&1 >/dev/null) || rc=$?
rm -f "$app/modules/t/tasks/both.json"
[ "$rc" != 0 ] && [[ "$err" == *"both.json"* && "$err" == *"'cron'"* && "$err" == *"'frequency'"* ]] ||
    fail "bad: a task with cron and frequency: exit $rc: $err"
ok "bad: expressions, zones, tasks, policies and keys refused at load, naming the field"

# ---------------------------------------------------------------- three ---
start_run 1
start_run 2
start_run 3
# The schedules run for 20 s (a duration, not a wait for something).
sleep 20
stop_run 1
stop_run 2
stop_run 3
logs=("$tmp"/run-*.log)
check_ticks fast three "${logs[@]}"
fast_n=$NTICKS
check_ticks catchup three "${logs[@]}"
[ "$fast_n" -ge 5 ] || fail "three: only $fast_n ticks of fast in 20 s"
# Which processes claimed ticks: any of them may; at least one did.
claimers=$(grep -l "schedule 'fast': queued" "${logs[@]}" | wc -l)
q=$(queued)
ran=$(($(jobs_of fast) + $(jobs_of catchup)))
[ $((ran + q)) -eq $((fast_n + NTICKS)) ] ||
    fail "three: $((fast_n + NTICKS)) ticks queued, but $ran jobs ran and $q wait"
ok "three: $fast_n + $NTICKS ticks, each queued once (by $claimers of 3 processes), $ran jobs ran"

# --------------------------------------------------------------- leader ---
rm -f "$tmp"/run-*.log
start_run 1
start_run 2
start_run 3
leader=""
find_leader() {
    local n
    for n in 1 2 3; do
        if grep -qs 'now the leader' "$tmp/run-$n.log"; then leader=$n; return 0; fi
    done
    return 1
}
wait_until 30000 find_leader || fail "leader: no process became the leader"
# Right after the next tick that any process logs, SIGKILL the leader.
base=$(ticks fast "$tmp"/run-*.log | wc -l)
tick_logged() { [ "$(ticks fast "$tmp"/run-*.log | wc -l)" -gt "$base" ]; }
wait_until 30000 tick_logged || fail "leader: no tick within 30 s"
kill -KILL "${pids[$leader]}"
wait "${pids[$leader]}" 2>/dev/null || true
pids[$leader]=""
killed_at=$(ticks fast "$tmp"/run-*.log | tail -n 1)
# The others go on: wait for three more ticks after the kill.
after_kill() { [ "$(ticks fast "$tmp"/run-*.log | tail -n 1)" -ge $((killed_at + 6000)) ]; }
wait_until 60000 after_kill || fail "leader: no tick after the leader was killed"
# held is paused while its schedulers run, for the downtime of missed.
st schedules pause held >/dev/null || fail "paused: stellar schedules pause held"
now; paused_at=$NOW
for n in 1 2 3; do [ "$n" = "$leader" ] || stop_run "$n"; done
check_ticks fast leader "$tmp"/run-*.log
ok "leader: process $leader killed after tick $killed_at; $NTICKS ticks, each queued once, none lost"

# --------------------------------------------------------------- missed ---
last_fast=$(ticks fast "$tmp"/run-*.log | tail -n 1)
last_catchup=$(ticks catchup "$tmp"/run-*.log | tail -n 1)
[ -n "$last_fast" ] && [ -n "$last_catchup" ] || fail "missed: no ticks before the downtime"
rm -f "$tmp"/run-*.log
# Every scheduler is down for longer than the grace plus a few ticks.
sleep $(((GRACE_MS + 6000) / 1000))
now; resumed_at=$NOW
st schedules resume held >/dev/null || fail "paused: stellar schedules resume held"
now; started=$NOW
start_run 1
after_start() { [ "$(ticks fast "$tmp/run-1.log" | tail -n 1)" -ge $((started + 2000)) ]; }
wait_until 30000 after_start || fail "missed: no tick after the restart"
stop_run 1
log=$tmp/run-1.log
once=$(grep -c "schedule 'catchup': queued .* for every missed tick" "$log" || true)
[ "$once" = 1 ] || fail "missed: 'once' queued $once jobs for the missed ticks, want 1"
m=$(grep "schedule 'catchup': queued .* for every missed tick" "$log" |
    sed 's/.* for tick \([0-9]*\).*/\1/')
# Its tick is the latest missed one: after the last before the downtime,
# older than the grace at the start; the ticks after it follow 2 s apart
# (check_ticks).
[ "$m" -gt "$last_catchup" ] && [ "$m" -le $((NOW - GRACE_MS)) ] ||
    fail "missed: the missed-ticks job has tick $m: not after the last tick $last_catchup, or within the grace"
check_ticks catchup missed "$log"
for t in $(ticks fast "$log"); do
    [ "$t" -gt $((started - GRACE_MS)) ] ||
        fail "missed: 'skip' queued tick $t, missed during the downtime (start $started)"
done
first_fast=$(ticks fast "$log" | head -n 1)
[ $((first_fast - last_fast)) -gt 4000 ] ||
    fail "missed: no downtime gap in fast's ticks ($last_fast, then $first_fast)"
ok "missed: 'once' queued one job (tick $m) for the ticks missed since $last_fast; 'skip' none"

# --------------------------------------------------------------- paused ---
# held's ticks from the pause to the resume (just before the start) were
# skipped: no catch-up job for them, and no tick of theirs queued.
held_once=$(grep -c "schedule 'held': queued .* for every missed tick" "$log" || true)
[ "$held_once" = 0 ] ||
    fail "paused: held queued a catch-up job for the ticks of its pause: $(grep "schedule 'held'" "$log" | head -n 1)"
for t in $(ticks held "$log"); do
    [ "$t" -gt "$resumed_at" ] ||
        fail "paused: held queued tick $t, from its pause ($paused_at to $resumed_at)"
done
[ -n "$(ticks held "$log")" ] || fail "paused: held queued no tick after its resume"
ok "paused: held paused from $paused_at to $resumed_at, no catch-up job; $(ticks held "$log" | wc -l) ticks after"

passed=1
echo "all schedule scenarios passed ($backend)"
