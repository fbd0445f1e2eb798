#!/usr/bin/env bash
# command.sh sqlite|redis: command tasks (tasks in any language, issue 13)
# on the real `stellar` program and real processes, on one backend.
#
#   roundtrip   1 MiB of UTF-8 params reach the command's stdin unchanged
#   failure     the last non-empty stderr line is the failed entry's error
#   status      a command that writes no stderr: "exit status N"
#   signal      a command killed by a signal: "killed by SIGUSR1"
#   limits      "limits": a busy loop with cpuSeconds 1 dies of SIGXCPU
#               ("(cpu limit 1 s)"), one that ignores it of SIGKILL a
#               second later; openFiles and memoryMiB are the command's
#               `ulimit -n` and `ulimit -v` (soft and hard); python3 past
#               its memoryMiB fails with its own MemoryError; a limit
#               above the kernel's fails with "cannot start"; `stellar
#               tasks --json` shows them
#   flood       20 MB of output, one 1 MB line, binary junk and a closed
#               stdin: the job succeeds, the log stays small
#   timeout     "timed out after N ms", and a grandchild `sleep` dies too
#   retry       the retry plugin, with a command that fails twice
#   periodic    a command task with a frequency runs again and again
#   many        100 commands with 8 TaskProcessors: none lost
#   stop        SIGTERM while a command runs: the command ends and its job
#               goes back to its queue; a new `stellar run` runs it
#   makeTask    the sh, python and node skeletons (those whose interpreter
#               is installed) succeed, and fail on {"fail":true}
#   bad         a bad task file stops `stellar run` naming file and key,
#               a bad "limits" too
#
# ctest passes STELLAR_BIN. Redis runs on a private redis-server on a unix
# socket in the test's folder. Every wait polls with a generous deadline,
# for a loaded machine. Exit 77: skipped (no jq, or no redis-server).
set -euo pipefail
export LC_ALL=C
unset STELLAR_BACKEND

backend=${1:?usage: command.sh sqlite|redis}
: "${STELLAR_BIN:?}"
command -v jq >/dev/null 2>&1 || { echo "skip: jq is not on PATH"; exit 77; }
. "$(dirname "$0")/../lib.sh"
suite_tmp command
app=$tmp/app

case $backend in
sqlite) ;;
redis) start_private_redis ;;
*) fail "unknown backend $backend" ;;
esac

# An app of command tasks needs no C compiler: $CC names none.
start_run() { # start_run LOG: `stellar run` of the app, 8 processors
    (cd "$app" && CC=/nonexistent/cc exec "$STELLAR_BIN" run --no-http --processors 8) >"$1" 2>&1 &
    run_pid=$!
    wait_until 60000 grep -qs 'started .*TaskProcessor' "$1" ||
        fail "stellar run did not start: $(cat "$1")"
}

stop_run() { # SIGTERM; exit 0 within 60 s
    local pid=$run_pid rc=0
    run_pid=""
    kill -TERM "$pid"
    now; local deadline=$((NOW + 60000))
    while kill -0 "$pid" 2>/dev/null; do
        now; [ "$NOW" -le "$deadline" ] || fail "stellar run still running 60 s after SIGTERM"
        sleep 0.05
    done
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "stellar run exited $rc after SIGTERM"
}

# task NAME JSON_REST SCRIPT: modules/t/tasks/NAME.json running ./NAME.sh
task() {
    local d=$app/modules/t/tasks
    printf '{"name": "%s", "description": "test task %s", "command": ["./%s.sh"]%s}\n' \
        "$1" "$1" "$1" "$2" >"$d/$1.json"
    printf '#!/bin/sh\n%s\n' "$3" >"$d/$1.sh"
    chmod +x "$d/$1.sh"
}

# error_of TASK: the errors of TASK's failed entries, one a line.
error_of() { st failed --json | jq -r --arg t "$1" '.[] | select(.payload.class == $t) | .error'; }
failed_of() { st failed --json | jq --arg t "$1" '[.[] | select(.payload.class == $t)] | length'; }
processed() { st stats --json | jq '.processed // 0'; }

# ------------------------------------------------------------ the app ---
cd "$tmp"
st new app >/dev/null || fail "stellar new app"
# HTTP off, 1.5 s of grace at a stop.
jq '.tasks.shutdownTimeout = 1500 | del(.http)' app/stellar.json >app/s.json
mv app/s.json app/stellar.json
mkdir -p "$app/modules/t/tasks" "$app/out/many"
cd "$app"

task roundtrip '' 'cat >"$STELLAR_APP/out/roundtrip.in"
echo "task=$STELLAR_TASK queue=$STELLAR_QUEUE worker=$STELLAR_WORKER backend=$STELLAR_BACKEND cwd=$(pwd)" >"$STELLAR_APP/out/roundtrip.env"'
task failer '' 'cat >/dev/null; echo "first line" >&2; echo "the real error: ünïcode" >&2; printf "  \n\n" >&2; exit 3'
task exiter '' 'cat >/dev/null; echo "only stdout"; exit 7'
task signaler '' 'kill -USR1 $$; sleep 5'
task sleeper ', "timeout": 1500' 'sleep 300 &
echo $! >"$STELLAR_APP/out/grandchild.pid"
wait'
task flaky ', "plugins": ["retry"], "pluginOptions": {"retry": {"retryLimit": 3, "retryDelay": 100}}' \
    'n=$(cat "$STELLAR_APP/out/flaky.count" 2>/dev/null || echo 0); n=$((n + 1))
echo $n >"$STELLAR_APP/out/flaky.count"
[ $n -gt 2 ] || { echo "attempt $n fails" >&2; exit 1; }
echo "attempt $n works"'
task ticker ', "frequency": 300' 'echo tick >>"$STELLAR_APP/out/ticks"'
task many ', "queue": "many"' 'p=$(cat); i=${p#*:}; i=${i%\}}; : >"$STELLAR_APP/out/many/$i"'
task flood '' 'exec 0<&-
head -c 1000000 /dev/zero | tr "\\0" x; echo
printf "\\001\\377\\376junk\\n"
yes flood | head -c 20000000
echo done >"$STELLAR_APP/out/flood.done"'
task longrun ', "queue": "long"' 'echo $$ >"$STELLAR_APP/out/long.pid"; exec sleep 300'
task cpuhog ', "timeout": 120000, "limits": {"cpuSeconds": 1}' 'while :; do :; done'
task cpustubborn ', "timeout": 120000, "limits": {"cpuSeconds": 1}' 'trap "" XCPU; while :; do :; done'
task nofile ', "limits": {"openFiles": 64}' 'cat >/dev/null
[ "$(ulimit -n)/$(ulimit -H -n)" = 64/64 ] || { echo "ulimit -n: $(ulimit -n)/$(ulimit -H -n)" >&2; exit 1; }
: >"$STELLAR_APP/out/nofile.ok"'
task memcap ', "limits": {"memoryMiB": 512}' 'cat >/dev/null
[ "$(ulimit -v)/$(ulimit -H -v)" = 524288/524288 ] || { echo "ulimit -v: $(ulimit -v)/$(ulimit -H -v)" >&2; exit 1; }
: >"$STELLAR_APP/out/memcap.ok"'
task memhog ', "limits": {"memoryMiB": 256}' 'exec python3 -c "b = bytearray(1 << 30)"'
nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)
task toomany ', "limits": {"openFiles": '$((nr_open + 1))'}' 'exit 0'

langs=sh
command -v python3 >/dev/null 2>&1 && langs="$langs python"
command -v node >/dev/null 2>&1 && langs="$langs node"
for l in $langs; do
    st makeTask "made_$l" --module=made --lang="$l" >/dev/null || fail "makeTask --lang=$l"
done

# `stellar tasks` shows each kind and command; no compiler was needed.
out=$(CC=/nonexistent/cc st tasks)
grep -Eq '^failer +command +default +- +\./failer\.sh' <<<"$out" || fail "stellar tasks: $out"
[ ! -d .stellar ] || fail "an app of command tasks was built: $(ls -R .stellar)"
ok "stellar tasks lists command tasks with their kind and command"

start_run "$tmp/run.log"

# ---------------------------------------------------------- roundtrip ---
# About 1 MiB of params with 2-, 3- and 4-byte UTF-8, as JSON.stringify
# writes them (the bytes the command must get).
chunk='héllo wörld € 𝄞 日本語 \"quoted\" \\ back '
text=$chunk
while [ ${#text} -lt 1000000 ]; do text=$text$text; done
printf '{"text":"%s","n":1}' "$text" >"$tmp/big.json"
size=$(wc -c <"$tmp/big.json")
[ "$size" -ge 1000000 ] || fail "params of $size bytes"
st enqueue roundtrip @"$tmp/big.json" >/dev/null || fail "enqueue roundtrip"
wait_until 120000 test -s out/roundtrip.env || fail "roundtrip did not run"
wait_until 30000 cmp -s "$tmp/big.json" out/roundtrip.in ||
    fail "params differ on stdin: $(wc -c <out/roundtrip.in) bytes of $size"
env_line=$(cat out/roundtrip.env)
[[ $env_line == "task=roundtrip queue=default worker="?*" backend="*" cwd=$app/modules/t/tasks" ]] ||
    fail "environment: $env_line"
case $backend in redis) [[ $env_line == *"backend=redis+unix://"* ]] || fail "STELLAR_BACKEND: $env_line" ;; esac
ok "$size bytes of UTF-8 params reach stdin unchanged; STELLAR_* set; cwd is the task's folder"

# ---------------------------------------------- failure, status, signal ---
st enqueue failer '{}' >/dev/null
st enqueue exiter '{}' >/dev/null
st enqueue signaler '{}' >/dev/null
wait_until 60000 eval '[ "$(failed_of failer)" = 1 ] && [ "$(failed_of exiter)" = 1 ] && [ "$(failed_of signaler)" = 1 ]' ||
    fail "failed entries: $(st failed --json)"
[ "$(error_of failer)" = "the real error: ünïcode" ] || fail "failer's error: $(error_of failer)"
ok "failure: the last non-empty stderr line is the error"
[ "$(error_of exiter)" = "exit status 7" ] || fail "exiter's error: $(error_of exiter)"
ok "no stderr: exit status 7"
[ "$(error_of signaler)" = "killed by SIGUSR1" ] || fail "signaler's error: $(error_of signaler)"
ok "death by signal: killed by SIGUSR1"
grep -q 'WARN \[failer\] the real error' "$tmp/run.log" || fail "stderr not in the log"
grep -q 'INFO \[exiter\] only stdout' "$tmp/run.log" || fail "stdout not in the log"
ok "stdout and stderr lines are in the log with the task's name"

# ------------------------------------------------------------- limits ---
lim=$(st tasks --json | jq -c '[.[] | select(.name == "nofile" or .name == "failer") | .limits]')
[ "$lim" = '[null,{"openFiles":64}]' ] || [ "$lim" = '[{"openFiles":64},null]' ] ||
    fail "stellar tasks --json limits: $lim"
for t in cpuhog cpustubborn nofile memcap toomany; do st enqueue $t '{}' >/dev/null; done
command -v python3 >/dev/null 2>&1 && st enqueue memhog '{}' >/dev/null
wait_until 90000 eval '[ "$(failed_of cpuhog)" = 1 ] && [ "$(failed_of cpustubborn)" = 1 ] && [ "$(failed_of toomany)" = 1 ]' ||
    fail "failed entries: $(st failed --json)"
[ "$(error_of cpuhog)" = "killed by SIGXCPU (cpu limit 1 s)" ] || fail "cpuhog's error: $(error_of cpuhog)"
ok "cpuSeconds 1: a busy loop is killed by SIGXCPU (cpu limit 1 s), not by its timeout"
[ "$(error_of cpustubborn)" = "killed by SIGKILL (cpu limit 1 s)" ] || fail "cpustubborn's error: $(error_of cpustubborn)"
ok "cpuSeconds 1: a loop that ignores SIGXCPU is killed by SIGKILL (cpu limit 1 s)"
[ "$(error_of toomany)" = "cannot start ./toomany.sh: limit openFiles $((nr_open + 1)): Operation not permitted" ] ||
    fail "toomany's error: $(error_of toomany)"
ok "a limit the kernel refuses: cannot start ./toomany.sh: limit openFiles $((nr_open + 1)): ..."
wait_until 60000 eval '[ -e out/nofile.ok ] || [ "$(failed_of nofile)" != 0 ]' || fail "nofile did not run"
wait_until 60000 eval '[ -e out/memcap.ok ] || [ "$(failed_of memcap)" != 0 ]' || fail "memcap did not run"
[ "$(failed_of nofile)" = 0 ] || fail "openFiles: $(error_of nofile)"
ok "openFiles 64: the command's ulimit -n is 64 (soft and hard)"
[ "$(failed_of memcap)" = 0 ] || fail "memoryMiB: $(error_of memcap)"
ok "memoryMiB 512: the command's ulimit -v is 524288 KiB (soft and hard)"
if command -v python3 >/dev/null 2>&1; then
    wait_until 60000 eval '[ "$(failed_of memhog)" = 1 ]' || fail "memhog did not fail"
    [ "$(error_of memhog)" = "MemoryError" ] || fail "memhog's error: $(error_of memhog)"
    ok "memoryMiB 256: python3 allocating 1 GiB fails with its own MemoryError"
fi

# ----------------------------------------------------------- makeTask ---
for l in $langs; do
    st enqueue "made_$l" '{"who":"test"}' >/dev/null
    st enqueue "made_$l" '{"fail":true}' >/dev/null
done
for l in $langs; do
    wait_until 60000 grep -q "INFO \[made_$l\] .*made_$l ran with" "$tmp/run.log" ||
        fail "the $l skeleton did not succeed"
    wait_until 60000 eval '[ "$(failed_of made_$l)" = 1 ]' || fail "the $l skeleton did not fail"
    [ "$(error_of "made_$l")" = "failing on purpose: params.fail is set" ] ||
        fail "the $l skeleton's error: $(error_of "made_$l")"
done
ok "makeTask --lang: the skeletons ($langs) succeed and fail as they say"

# -------------------------------------------------------------- flood ---
log_before=$(wc -c <"$tmp/run.log")
st enqueue flood '{}' >/dev/null
wait_until 120000 test -s out/flood.done || fail "flood did not end"
sleep 1
[ "$(failed_of flood)" = 0 ] || fail "flood failed: $(error_of flood)"
grep -q '\[flood\] (.* lines of output not logged' "$tmp/run.log" || fail "no count of lines not logged"
grep -q '\[flood\] x*xx \[cut at [0-9]* bytes\]' "$tmp/run.log" || fail "the long line was not cut"
grep -q '\[flood\] ???junk' "$tmp/run.log" || fail "binary junk was not made printable"
grown=$(($(wc -c <"$tmp/run.log") - log_before))
[ "$grown" -lt 2000000 ] || fail "20 MB of output grew the log by $grown bytes"
ok "a flood of output: the job succeeds; lines cut, rate bounded (log +$grown bytes)"

# ------------------------------------------------------------ timeout ---
st enqueue sleeper '{}' >/dev/null
wait_until 60000 eval '[ "$(failed_of sleeper)" = 1 ]' || fail "sleeper did not fail"
[ "$(error_of sleeper)" = "timed out after 1500 ms" ] || fail "sleeper's error: $(error_of sleeper)"
gc=$(cat out/grandchild.pid)
wait_until 10000 eval '! kill -0 "$gc" 2>/dev/null' || fail "the grandchild sleep $gc outlived the timeout"
ok "timeout: timed out after 1500 ms, and the grandchild is gone"

# -------------------------------------------------------------- retry ---
st enqueue flaky '{}' >/dev/null
wait_until 60000 eval '[ "$(cat out/flaky.count 2>/dev/null)" = 3 ]' ||
    fail "flaky ran $(cat out/flaky.count 2>/dev/null || echo 0) times"
sleep 1
[ "$(failed_of flaky)" = 0 ] || fail "flaky is in failed: $(error_of flaky)"
[ "$(cat out/flaky.count)" = 3 ] || fail "flaky ran again: $(cat out/flaky.count)"
ok "retry plugin: fails twice, then succeeds; nothing in failed"

# ----------------------------------------------------------- periodic ---
wait_until 60000 eval '[ "$(wc -l <out/ticks 2>/dev/null || echo 0)" -ge 3 ]' ||
    fail "the periodic command ran $(wc -l <out/ticks 2>/dev/null || echo 0) times"
ok "a periodic command task runs again and again"

# --------------------------------------------------------------- many ---
before=$(processed)
for i in $(seq 1 100); do printf '{"i":%d}\n' "$i"; done >"$tmp/many.txt"
while read -r p; do st enqueue many "$p" >/dev/null || fail "enqueue many $p"; done <"$tmp/many.txt"
wait_until 180000 eval '[ "$(ls out/many | wc -l)" -ge 100 ]' ||
    fail "$(ls out/many | wc -l) of 100 commands ran"
wait_until 30000 eval '[ "$(st length many)" = 0 ]' || fail "queue many: $(st length many) left"
[ "$(failed_of many)" = 0 ] || fail "many failed: $(error_of many | head -3)"
[ $(($(processed) - before)) -ge 100 ] || fail "processed $(($(processed) - before)) (want >= 100)"
ok "100 commands with 8 TaskProcessors: none lost"

# --------------------------------------------------------------- stop ---
st enqueue longrun '{}' long >/dev/null
wait_until 60000 test -s out/long.pid || fail "longrun did not start"
lp=$(cat out/long.pid)
stop_run
! kill -0 "$lp" 2>/dev/null || fail "the command $lp outlived the stop"
[ "$(st length long)" = 1 ] || fail "longrun is not back in its queue: length $(st length long)"
[ "$(failed_of longrun)" = 0 ] || fail "longrun failed: $(error_of longrun)"
grep -q 'still running at the stop deadline' "$tmp/run.log" || fail "no requeue in the log"
ok "SIGTERM while a command runs: the command ends, its job goes back to its queue"
rm -f out/long.pid
start_run "$tmp/run2.log"
wait_until 60000 test -s out/long.pid || fail "longrun did not run again"
[ "$(cat out/long.pid)" != "$lp" ] || fail "the same process?"
ok "the job put back runs again at the next start"
stop_run

# ---------------------------------------------------------------- bad ---
printf '{"name": "bad", "description": "d", "command": ["./bad.sh"], "retries": 1}\n' >modules/t/tasks/bad.json
err=$(st run --no-http 2>&1 >/dev/null) && fail "stellar run accepted an unknown key"
[[ $err == *"modules/t/tasks/bad.json"*"'retries'"* ]] || fail "unknown key: $err"
printf '{"name": "bad", "description": "d", "command": ["no-such-program-xyz"]}\n' >modules/t/tasks/bad.json
err=$(st run --no-http 2>&1 >/dev/null) && fail "stellar run accepted a missing program"
[[ $err == *"modules/t/tasks/bad.json"*"'no-such-program-xyz' is not found on PATH"* ]] || fail "missing program: $err"
printf '{"name": "bad", "description": "d", "command": ["./bad.sh"]}\n' >modules/t/tasks/bad.json
printf 'echo hi\n' >modules/t/tasks/bad.sh
err=$(st run --no-http 2>&1 >/dev/null) && fail "stellar run accepted a script that is not executable"
[[ $err == *"modules/t/tasks/bad.json"*"not an executable file"* ]] || fail "not executable: $err"
printf '{"name": "bad", ' >modules/t/tasks/bad.json
err=$(st run --no-http 2>&1 >/dev/null) && fail "stellar run accepted bad JSON"
[[ $err == *"modules/t/tasks/bad.json:"* ]] || fail "bad JSON: $err"
bad_limits() { # bad_limits LIMITS WANT: a "limits" refused, naming WANT
    printf '{"name": "bad", "description": "d", "command": ["./bad.sh"], "limits": %s}\n' "$1" >modules/t/tasks/bad.json
    err=$(st run --no-http 2>&1 >/dev/null) && fail "stellar run accepted \"limits\": $1"
    [[ $err == *"modules/t/tasks/bad.json"*"$2"* ]] || fail "\"limits\": $1: $err"
}
chmod +x modules/t/tasks/bad.sh
bad_limits '{"memory": 512}' "key 'limits': 'memory' is not a limit"
bad_limits '{"cpuSeconds": "60"}' "'cpuSeconds' must be an integer"
bad_limits '{"openFiles": 0}' "'openFiles' must be an integer"
bad_limits '{"memoryMiB": 1.5}' "'memoryMiB' must be an integer"
bad_limits '[512]' "key 'limits' must be an object"
rm -f modules/t/tasks/bad.*
ok "bad task files are refused naming the file and the key"

passed=1
echo "all passed ($backend)"
