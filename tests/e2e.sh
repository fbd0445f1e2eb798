#!/usr/bin/env bash
# e2e.sh SCENARIO: drives the real `stellar` program as a user would.
#
#   new_app      stellar new + makeTask + run + enqueue: the new task runs
#   example_app  examples/app: enqueue, enqueueIn timing, bad input, stats,
#                failed, SIGTERM
#   manage       the management commands on the example app: exit codes
#                for bad input, --json documents, retryAndRemoveFailed
#                --all, `stellar run --http` answering /api/stats
#   config       stellar.json: keys stellar does not have and a
#                minTaskProcessors other than maxTaskProcessors are
#                refused naming file:line; maxTaskProcessors is the number
#                of TaskProcessors
#   two_runs     two `stellar run` of one app with http.listen: the second
#                logs that the address is in use and processes jobs
#                without HTTP; `--http` on a taken address exits 1
#   embed        the embedding example program exits 0
#
# ctest passes STELLAR_BIN (build/stellar), STELLAR_SRC (the source tree)
# and STELLAR_EMBED_BIN in the environment. Each scenario works in its own
# temporary directory; every wait polls a condition with a deadline.
set -euo pipefail
export LC_ALL=C
unset STELLAR_BACKEND

scenario=${1:?usage: e2e.sh new_app|example_app|manage|config|two_runs|embed}
: "${STELLAR_BIN:?}" "${STELLAR_SRC:?}"
. "$(dirname "$0")/lib.sh"
suite_tmp e2e
poll_s=0.02 # wait_until's period: the timing checks poll
# run2_pid: a second `stellar run` (two_runs), logging to run2.log

# has_line FILE LINE, with builtins only (used in the timing loop).
has_line() {
    local l
    [ -f "$1" ] || return 1
    while IFS= read -r l; do [ "$l" = "$2" ] && return 0; done <"$1"
    return 1
}


# start_run APP_DIR [ARGS...]. Apps made by `stellar new` and the example
# app serve HTTP on 127.0.0.1:8080; scenarios ask for a free port instead
# (--http 127.0.0.1:0), so that they can run side by side.
start_run() {
    local dir=$1
    shift
    (cd "$dir" && exec "$STELLAR_BIN" run "$@") >"$tmp/run.log" 2>&1 &
    run_pid=$!
}

# http_port: the port `stellar run` logged ("dashboard and API on
# http://127.0.0.1:PORT/"), waiting for the line.
http_port() {
    local line
    wait_until 30000 grep -qs 'dashboard and API on http://' "$tmp/run.log" ||
        fail "stellar run logged no HTTP address"
    line=$(grep -o 'dashboard and API on http://[^ ]*' "$tmp/run.log" | head -n1)
    line=${line%/}
    echo "${line##*:}"
}

# http_get PORT PATH: the body of a GET, with curl if there is one, else
# bash's /dev/tcp.
http_get() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 10 "http://127.0.0.1:$1$2"
        return
    fi
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
    reply=$(cat <&3)
    exec 3<&-
    case $reply in "HTTP/1."?" 200"*) ;; *) return 1 ;; esac
    printf '%s\n' "${reply#*$'\r\n\r\n'}"
}

# stop_pid PID: SIGTERM; the process must exit 0 within 30 s.
stop_pid() {
    local pid=$1 rc=0 deadline
    kill -TERM "$pid"
    now; deadline=$((NOW + 30000))
    while kill -0 "$pid" 2>/dev/null; do
        now; [ "$NOW" -le "$deadline" ] || fail "stellar run ($pid) still running 30 s after SIGTERM"
        sleep 0.02
    done
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "stellar run ($pid) exited $rc after SIGTERM, expected 0"
}

stop_run() { # SIGTERM; `stellar run` must exit 0 within 30 s
    local pid=$run_pid
    run_pid=""
    stop_pid "$pid"
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
    grep -q '"greetUser"' <<<"$(st tasks --json)" || fail "stellar tasks does not list greetUser"
    ok "stellar tasks lists greetUser"

    grep -q '"listen": "127.0.0.1:8080"' stellar.json ||
        fail "stellar new wrote no http section: $(cat stellar.json)"
    start_run "$tmp/myapp" --http 127.0.0.1:0
    st enqueue greetUser '{"who":"e2e"}' || fail "stellar enqueue greetUser"
    # shellcheck disable=SC2016 # expanded by eval, at each poll
    wait_until 60000 eval '[ "$(stat_value processed)" -ge 1 ]' ||
        fail "greetUser did not run within 60 s (stats: $(st stats --json))"
    [ "$(stat_value failed)" = 0 ] || fail "greetUser failed: $(st failed --json)"
    ok "stellar run + enqueue: the new task ran"
    stop_run

    # A bad config value: exit 1, one line naming the file, line and key.
    cp stellar.json good.json
    sed 's/"scheduler": true/"scheduler": "yes"/' good.json >stellar.json
    local err line
    err=$(st run 2>&1 >/dev/null) && fail "stellar run accepted scheduler \"yes\""
    line=$(grep -n '"scheduler"' stellar.json | cut -d: -f1)
    [[ "$err" == "stellar run: "*"/myapp/stellar.json:$line: tasks.scheduler must be true or false" ]] ||
        fail "bad config value: $err"
    mv good.json stellar.json
    ok "a bad config value names file:line and the key"
}

# ------------------------------------------------------------ example_app ---
example_app() {
    local app=$tmp/app out=$tmp/out.txt err rc t0 t1 t2 lines
    copy_example_app "$app" all
    cd "$app"

    start_run "$app" --no-http
    st enqueue appendLine "{\"path\":\"$out\",\"line\":\"hello\"}" ||
        fail "stellar enqueue appendLine"
    wait_until 60000 has_line "$out" hello ||
        fail "appendLine did not write its line within 60 s"
    ok "enqueue appendLine: the line is in the file"

    # The command tasks: checkDisk (shell, periodic) runs at the start and
    # queues countWords (Python) with `stellar enqueue`, found through the
    # folder `stellar run` adds to PATH (this test runs it by its path).
    wait_until 30000 grep -qs '\[checkDisk\] [0-9]* MiB free in ' "$tmp/run.log" ||
        fail "checkDisk logged no free space within 30 s: $(tail -n 20 "$tmp/run.log")"
    wait_until 30000 grep -qs '\[countWords\] [0-9]* words in ' "$tmp/run.log" ||
        fail "countWords (queued by checkDisk) logged nothing within 30 s: $(tail -n 20 "$tmp/run.log")"
    st enqueue countWords '{"text":7}' || fail "stellar enqueue countWords"
    wait_until 30000 eval 'grep -q "countWords needs params.text, a string" <<<"$(st failed --json)"' ||
        fail "countWords with a bad text: not in failed with its stderr line: $(st failed --json)"
    ok "the shell and Python command tasks run, queue follow-ups and fail with their stderr line"

    # enqueueIn 1500 must start 1.5 s later, and well under a second past
    # that (seen from here, through a polling loop: 2.5 s at most).
    now; t0=$NOW
    st enqueueIn 1500 appendLine "{\"path\":\"$out\",\"line\":\"late\"}" ||
        fail "stellar enqueueIn"
    now; t1=$NOW
    wait_until 5000 has_line "$out" late || fail "enqueueIn 1500: no line after 5 s"
    now; t2=$NOW
    [ $((t2 - t0)) -ge 1500 ] || fail "enqueueIn 1500 ran after only $((t2 - t0)) ms"
    [ $((t2 - t1)) -le 2500 ] || fail "enqueueIn 1500 ran after $((t2 - t1)) ms (> 2500)"
    ok "enqueueIn 1500: started $((t2 - t1))..$((t2 - t0)) ms after the enqueue"

    # enqueueAt: a time in the past runs at once.
    now
    st enqueueAt $((NOW - 1000)) appendLine "{\"path\":\"$out\",\"line\":\"at\"}" ||
        fail "stellar enqueueAt"
    wait_until 3000 has_line "$out" at || fail "enqueueAt (past) did not run within 3 s"
    ok "enqueueAt"

    # Params from a file (4 MB, past what one argument may hold) and from
    # standard input; a missing file is exit 2 with one line naming it.
    local big=$tmp/big.json out2=$tmp/out2.txt
    {
        printf '{"path":"%s","line":"big","pad":"' "$out2"
        head -c 4194304 /dev/zero | tr '\0' x
        printf '"}\n'
    } >"$big"
    st enqueue appendLine "@$big" || fail "stellar enqueue appendLine @FILE (4 MB)"
    printf '{"path":"%s","line":"stdin"}' "$out2" | st enqueueIn 0 appendLine - ||
        fail "stellar enqueueIn 0 appendLine - (stdin)"
    printf '{"path":"%s","line":"at-stdin"}' "$out2" | st enqueueAt 0 appendLine @- ||
        fail "stellar enqueueAt 0 appendLine @- (stdin)"
    wait_until 30000 has_line "$out2" big || fail "the 4 MB params job did not run within 30 s"
    wait_until 10000 has_line "$out2" stdin || fail "the params from stdin did not arrive"
    wait_until 10000 has_line "$out2" at-stdin || fail "enqueueAt with @- did not run"
    [ "$(st scheduledAt default appendLine "@$big")" != "" ] || fail "scheduledAt @FILE printed nothing"
    rc=0
    err=$(st enqueue appendLine "@$tmp/no-such.json" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 2 ] || fail "enqueue @missing-file: exit $rc, expected 2"
    [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ] || fail "enqueue @missing-file: $err"
    case $err in *"$tmp/no-such.json"*"No such file"*) ;; *) fail "enqueue @missing-file: $err" ;; esac
    rc=0
    err=$(printf '[1]' | st enqueue appendLine - 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 2 ] || fail "enqueue - with a JSON array: exit $rc, expected 2: $err"
    ok "params from @FILE (4 MB) and from stdin (-, @-); a missing file is exit 2"

    # Bad input: one line on stderr, exit code 2, nothing queued.
    for args in "enqueue appendLine {bad" "enqueueIn -5 appendLine" "enqueue appendLine {} default --no-such-flag" \
        "enqueueIn 9223372036854775807 appendLine" "enqueueAt 9223372036854775807 appendLine" \
        "enqueueAt 253402300800000 appendLine"; do
        rc=0
        # shellcheck disable=SC2086
        err=$(st $args 2>&1 >/dev/null) || rc=$?
        [ "$rc" = 2 ] || fail "stellar $args: exit $rc, expected 2"
        lines=$(printf '%s\n' "$err" | grep -c .)
        [ "$lines" = 1 ] || fail "stellar $args: $lines lines on stderr, expected 1: $err"
    done
    for q in ' ' '   ' "$(printf 'bell\a')" "$(printf '\377')"; do
        rc=0
        err=$(st enqueue appendLine '{}' "$q" 2>&1 >/dev/null) || rc=$?
        [ "$rc" = 2 ] || fail "stellar enqueue appendLine {} '$q': exit $rc, expected 2"
        case "$err" in *"queue name"*) ;; *) fail "enqueue to '$q': $err" ;; esac
    done
    for ts in $(st timestamps --json | tr '[],' '   '); do
        [ "$ts" -ge 0 ] && [ "$ts" -le 253402300799999 ] || fail "a refused job was delayed at $ts"
    done
    ok "bad JSON, negative delay, time past 9999, bad queue name, unknown flag: exit 2 with a one-line error"

    # A failing task: listed by failed, counted by stats.
    st enqueue failAlways || fail "stellar enqueue failAlways"
    wait_until 10000 eval 'grep -q "failAlways" <<<"$(st failed --json)"' ||
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

# ----------------------------------------------------------------- manage ---
# json_is WANT ARGS...: `stellar ARGS --json` exits 0 and prints WANT.
json_is() {
    local want=$1 got rc=0
    shift
    got=$(st "$@" --json) || rc=$?
    [ "$rc" = 0 ] || fail "stellar $* --json: exit $rc"
    [ "$got" = "$want" ] || fail "stellar $* --json printed $got, expected $want"
}

# exit_is CODE ARGS...: `stellar ARGS` exits CODE with one line on stderr
# and nothing on stdout.
exit_is() {
    local want=$1 rc=0 out
    shift
    out=$(st "$@" 2>"$tmp/err") || rc=$?
    [ "$rc" = "$want" ] || fail "stellar $*: exit $rc, expected $want: $(cat "$tmp/err")"
    [ "$(grep -c . "$tmp/err")" = 1 ] ||
        fail "stellar $*: expected one line on stderr, got: $(cat "$tmp/err")"
    [ -z "$out" ] || fail "stellar $*: printed '$out' on stdout with exit $rc"
}

count_of() { # count_of PATTERN TEXT: how many times PATTERN is in TEXT
    local n
    n=$(printf '%s\n' "$2" | grep -o "$1" | wc -l)
    echo $((n))
}

failed_count() { st failedCount; }

manage() {
    local app=$tmp/app out=$tmp/out.txt p pb job T port body w cmd
    copy_example_app "$app"
    cd "$app"
    p="{\"path\":\"$out\",\"line\":\"a\"}"
    pb="{\"path\":\"$out\",\"line\":\"b\"}"
    job="{\"class\":\"appendLine\",\"queue\":\"default\",\"args\":[$p]}"

    # Help: groups in `stellar --help`, arguments and an example per command.
    body=$(st --help)
    for cmd in run enqueue inspect manage scaffold; do
        grep -q "^$cmd:$" <<<"$body" || fail "stellar --help has no group $cmd"
    done
    for cmd in del delDelayed delQueue enqueueRecurrentJob stopRecurrentJob \
        timestamps delayedAt allDelayed scheduledAt delDelayedAt delDelayesAt \
        delAllDelayed details queued workingOn allWorkingOn locks delLock \
        failedCount removeFailed retryAndRemoveFailed cleanOldWorkers dashboard; do
        grep -qi "^  ${cmd} " <<<"$body" || [ "$cmd" = delDelayesAt ] ||
            fail "stellar --help does not list $cmd"
        grep -q '^Example:' <<<"$(st "$cmd" --help)" || fail "stellar $cmd --help has no example"
    done
    ok "stellar --help groups the commands; each command's --help has an example"

    # Jobs wait: no `stellar run` yet.
    for _ in 1 2 3; do st enqueue appendLine "$p" >/dev/null; done
    st enqueue appendLine "$pb" >/dev/null
    body=$(st queued default --json)
    [ "$(count_of '"class":"appendLine"' "$body")" = 4 ] || fail "queued --json: $body"
    json_is "[{\"class\":\"appendLine\",\"queue\":\"default\",\"args\":[$pb]}]" queued default 3 3
    json_is '{"count":0}' failedCount
    grep -q '^#  TASK' <<<"$(st queued default)" || fail "stellar queued: no table"
    ok "queued: the jobs as payloads, ranges"

    # Bad input: a one-line error, exit 2 (usage) or 3 (not found), no change.
    exit_is 3 del nosuch appendLine
    exit_is 3 del default noSuchTask
    exit_is 2 del default appendLine '{bad'
    exit_is 2 del default appendLine '[1]'
    exit_is 2 del default appendLine '{}' -1
    exit_is 3 queued nosuch
    exit_is 2 queued default first
    exit_is 3 delQueue nosuch
    exit_is 3 removeFailed 0
    exit_is 2 removeFailed
    exit_is 2 removeFailed zero
    exit_is 2 retryAndRemoveFailed 0 --all
    exit_is 3 retryAndRemoveFailed -1
    exit_is 3 workingOn nobody:1+1
    exit_is 2 delLock not-a-lock
    exit_is 3 delLock lock:none
    exit_is 3 enqueueRecurrentJob noSuchTask
    exit_is 2 enqueueRecurrentJob appendLine
    exit_is 3 stopRecurrentJob noSuchTask
    exit_is 2 delDelayedAt soon
    exit_is 3 delDelayedAt 1000
    exit_is 2 delayedAt -5
    exit_is 3 scheduledAt default noSuchTask
    exit_is 3 delDelayed default noSuchTask
    exit_is 2 delDelayed default appendLine '{"unclosed'
    exit_is 2 cleanOldWorkers -5
    exit_is 2 noSuchCommand
    exit_is 2 run --http 127.0.0.1:0 --no-http
    [ "$(st length default)" = 4 ] || fail "bad input changed the queue: $(st queued default)"
    ok "bad input: one line, exit 2 or 3, nothing changed"

    # del: up to COUNT from the head; 0 (the default) is all.
    json_is '{"removed":2}' del default appendLine "$p" 2
    json_is '{"removed":1}' del default appendLine "$p"
    json_is '{"removed":0}' del default appendLine "$p"
    json_is "[{\"class\":\"appendLine\",\"queue\":\"default\",\"args\":[$pb]}]" queued default
    ok "del: count semantics"

    # Delayed jobs, at whole seconds an hour ahead.
    now
    T=$(((NOW / 1000 + 3600) * 1000))
    st enqueueAt $T appendLine "$p" >/dev/null
    st enqueueAt $((T + 1000)) appendLine "$p" >/dev/null
    st enqueueAt $((T + 2000)) failAlways >/dev/null
    json_is "[$T,$((T + 1000)),$((T + 2000))]" timestamps
    json_is "[$job]" delayedAt $T
    json_is "[$T,$((T + 1000))]" scheduledAt default appendLine "$p"
    json_is "{\"$T\":[$job],\"$((T + 1000))\":[$job],\"$((T + 2000))\":[{\"class\":\"failAlways\",\"queue\":\"default\",\"args\":[{}]}]}" allDelayed
    grep -q "^$T  [0-9T:-]*Z (in [0-9]*[mh])  default  appendLine" <<<"$(st allDelayed)" ||
        fail "stellar allDelayed table: $(st allDelayed)"
    json_is "[$T,$((T + 1000))]" delDelayed default appendLine "$p"
    json_is '[]' delDelayed default appendLine "$p"
    json_is '{"removed":1}' delDelayesAt $((T + 2000))
    st enqueueAt $T failAlways >/dev/null
    st enqueueAt $((T + 5000)) failAlways '{"n":2}' >/dev/null
    json_is '{"removed":2}' delAllDelayed
    json_is '[]' timestamps
    ok "timestamps, delayedAt, scheduledAt, allDelayed, delDelayed, delDelayesAt, delAllDelayed"

    # A periodic task: never two copies; stopped.
    json_is '{"task":"sayHello","enqueued":true}' enqueueRecurrentJob sayHello
    json_is '{"task":"sayHello","enqueued":true}' enqueue-recurrent-job sayHello
    body=$(st queued default --json)
    [ "$(count_of '"class":"sayHello"' "$body")" = 1 ] || fail "two copies of sayHello: $body"
    json_is '{"task":"sayHello","removed":1}' stopRecurrentJob sayHello
    json_is '{"task":"sayHello","removed":0}' stopRecurrentJob sayHello
    ok "enqueueRecurrentJob twice: one copy; stopRecurrentJob"

    json_is '{"queue":"default","deleted":true}' delQueue default
    exit_is 3 length default
    ok "delQueue"

    # With `stellar run --http`: failures, retries, workers, the API.
    start_run "$app" --http 127.0.0.1:0
    port=$(http_port)
    [ -n "$port" ] || fail "no HTTP port in the log of stellar run"
    body=$(http_get "$port" /api/stats) || fail "GET /api/stats on port $port failed"
    case $body in "{"*"}") ;; *) fail "GET /api/stats: $body" ;; esac
    ok "stellar run --http 127.0.0.1:0 answers /api/stats on port $port"

    for n in 1 2 3; do st enqueue failAlways "{\"n\":$n}" >/dev/null; done
    # shellcheck disable=SC2016 # expanded by eval, at each poll
    wait_until 20000 eval '[ "$(failed_count)" = 3 ]' ||
        fail "3 failed jobs expected, have $(failed_count)"
    body=$(http_get "$port" /api/stats) || fail "GET /api/stats failed"
    case $body in *'"failed":3'*) ;; *) fail "GET /api/stats after 3 failures: $body" ;; esac
    body=$(st failed 0 0 --json)
    json_is '{"removed":1}' removeFailed 0
    [ "$(st failed 0 0 --json)" != "$body" ] || fail "removeFailed 0 removed another job"
    exit_is 3 removeFailed 2
    json_is '{"count":2}' failedCount
    # Processors run: the retried jobs fail again, and are not retried again.
    json_is '{"retried":2}' retryAndRemoveFailed --all
    # shellcheck disable=SC2016
    wait_until 20000 eval '[ "$(stat_value failed)" = 5 ]' ||
        fail "the retried jobs did not fail again: $(st stats --json)"
    json_is '{"count":2}' failedCount
    ok "removeFailed INDEX, retryAndRemoveFailed --all while jobs fail again"

    body=$(st details --json)
    case $body in '{"queues":{'*'"workers":{"'*) ;; *) fail "details --json: $body" ;; esac
    body=$(st allWorkingOn --json)
    w=$(printf '%s\n' "$body" | grep -o '^{"[^"]*"' | cut -c3- | tr -d '"')
    [ -n "$w" ] || fail "allWorkingOn --json lists no worker: $body"
    body=$(st workingOn "$w" --json)
    case $body in null | '{"run_at":'*) ;; *) fail "workingOn $w --json: $body" ;; esac
    body=$(st locks --json)
    case $body in "{"*"}") ;; *) fail "locks --json: $body" ;; esac
    json_is '{}' cleanOldWorkers 3600000
    st details >/dev/null || fail "stellar details (table)"
    st allWorkingOn >/dev/null || fail "stellar allWorkingOn (table)"
    st locks >/dev/null || fail "stellar locks (table)"
    ok "details, allWorkingOn, workingOn, locks, cleanOldWorkers"
    stop_run

    # No processors now: --all retries every one, then nothing is left.
    json_is '{"retried":2}' retryAndRemoveFailed --all
    json_is '{"count":0}' failedCount
    body=$(st queued default --json)
    [ "$(count_of '"class":"failAlways"' "$body")" = 2 ] || fail "retried jobs not queued: $body"
    json_is '{"removed":0}' removeFailed --all
    ok "retryAndRemoveFailed --all queues every failed job again"
    redaction "$app"
}

# redaction APP: no password of a backend URL is shown, in an error or in
# the log of `stellar run` (on a private Redis with a password, if there
# is a redis-server).
redaction() {
    local app=$1 err rc=0 sock=$tmp/redis.sock rpid
    for u in 'redis://:secretpw@127.0.0.1:1' 'redis://u:secretpw@127.0.0.1:1/0?password=secretpw' \
        'redis://u:secretpw@127.0.0.1:99999' 'nosuch://u:secretpw@x'; do
        rc=0
        err=$(st stats --backend "$u" 2>&1 >/dev/null) || rc=$?
        [ "$rc" != 0 ] || fail "stats --backend $u succeeded"
        case $err in *secretpw*) fail "the password is in the error: $err" ;; esac
        case $err in *'***'*) ;; *) fail "no *** in the error: $err" ;; esac
    done
    ok "connection errors show a URL's password as ***"

    command -v redis-server >/dev/null 2>&1 || {
        ok "# skip: no redis-server for the stellar run log check"
        return 0
    }
    redis-server --port 0 --unixsocket "$sock" --requirepass secretpw \
        --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
    rpid=$!
    wait_until 10000 test -S "$sock" || fail "private redis-server did not start"
    start_run "$app" --no-http --backend "redis+unix://:secretpw@$sock"
    wait_until 30000 grep -qs 'started .*TaskProcessor' "$tmp/run.log" ||
        fail "stellar run on the private Redis did not start"
    if grep -q secretpw "$tmp/run.log"; then
        fail "the password is in the log of stellar run: $(grep secretpw "$tmp/run.log")"
    fi
    grep -q 'redis+unix://:\*\*\*@' "$tmp/run.log" || fail "no redacted URL in the log"
    stop_run
    kill "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    ok "stellar run logs the backend URL with its password as ***"
}

# ----------------------------------------------------------------- config ---
# write_config TASKS_JSON [HTTP_JSON]: the app's stellar.json, one key a
# line, so that errors can be checked against the line of a key.
write_config() {
    local http=${2:-'{ "listen": "127.0.0.1:0" }'}
    {
        echo '{'
        echo '  "tasks": {'
        echo '    "backend": "sqlite:./stellar.db",'
        printf '%s\n' "$1"
        echo '  },'
        echo "  \"http\": $http"
        echo '}'
    } >stellar.json
}

# refused KEY CMD...: `stellar CMD` exits 1 at once, with one line on
# stderr naming stellar.json, the line where KEY is written, and the dotted
# KEY; sets ERR to that line. (A `stellar run` that accepted the config
# would run: `timeout` ends it, and the check fails.)
refused() {
    local key=$1 rc=0 line
    shift
    ERR=$(timeout 60 "$STELLAR_BIN" "$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 1 ] || fail "stellar $* with $(tr -d '\n' <stellar.json): exit $rc, expected 1: $ERR"
    [ "$(printf '%s\n' "$ERR" | grep -c .)" = 1 ] || fail "stellar $*: expected one line: $ERR"
    line=$(grep -n "\"${key##*.}\"" stellar.json | head -n1 | cut -d: -f1)
    [[ "$ERR" == "stellar $1: $PWD/stellar.json:$line: $key "* ]] ||
        fail "stellar $*: the error does not name stellar.json:$line and $key: $ERR"
}

config() {
    local err pid w
    cd "$tmp"
    st new cfg >/dev/null || fail "stellar new cfg"
    cd cfg
    grep -q minTaskProcessors stellar.json &&
        fail "stellar new wrote minTaskProcessors: $(cat stellar.json)"
    grep -q minTaskProcessors "$STELLAR_SRC/examples/app/stellar.json" &&
        fail "examples/app/stellar.json sets minTaskProcessors"
    ok "stellar new and examples/app write no minTaskProcessors"

    # minTaskProcessors below maxTaskProcessors: no scaling, so refused.
    write_config '    "minTaskProcessors": 1,
    "maxTaskProcessors": 2,
    "scheduler": false'
    refused tasks.minTaskProcessors run
    [[ "$ERR" == *"tasks.minTaskProcessors is 1, but stellar runs a fixed number of TaskProcessors (maxTaskProcessors: 2)"*"set it to 2" ]] ||
        fail "minTaskProcessors 1, maxTaskProcessors 2: $ERR"
    write_config '    "minTaskProcessors": 2,
    "scheduler": false'
    refused tasks.minTaskProcessors run
    [[ "$ERR" == *"(maxTaskProcessors, 1 when not set: 1)"* ]] ||
        fail "minTaskProcessors 2 alone: $ERR"
    ok "minTaskProcessors other than maxTaskProcessors: refused with file:line"

    write_config '    "workers": 2,
    "maxTaskProcessors": 3'
    refused tasks.workers run
    ok "workers and maxTaskProcessors that disagree: refused"

    # Under 3 s the library would quietly raise it to 3 s.
    write_config '    "stuckWorkerTimeout": 1000'
    refused tasks.stuckWorkerTimeout run
    [[ "$ERR" == *"tasks.stuckWorkerTimeout must be an integer >= 3000" ]] ||
        fail "stuckWorkerTimeout 1000: $ERR"
    ok "stuckWorkerTimeout under 3000: refused"

    # A key stellar does not have, in each section, for every command.
    write_config '    "maxTaskProcessors": 2,
    "checkTimeout": 500'
    refused tasks.checkTimeout run
    [[ "$ERR" == *"tasks.checkTimeout is not a setting of stellar (tasks has: backend, queues, "* ]] ||
        fail "unknown tasks key: $ERR"
    refused tasks.checkTimeout enqueue greet
    refused tasks.checkTimeout stats
    write_config '    "maxTaskProcessors": 2' '{ "listen": "127.0.0.1:0", "port": 8080 }'
    refused http.port run
    write_config '    "maxTaskProcessors": 2
  },
  "redis": {
    "host": "127.0.0.1"'
    refused redis run
    [[ "$ERR" == *"redis is not a setting of stellar (the top level has: tasks, http, schedules, limits)" ]] ||
        fail "unknown top-level key: $ERR"
    ok "a key stellar does not have: refused with file:line, by every command"

    # Equal minimum and maximum: accepted; that many TaskProcessors run.
    write_config '    "minTaskProcessors": 3,
    "maxTaskProcessors": 3,
    "scheduler": false'
    start_run "$PWD"
    pid=$run_pid
    # shellcheck disable=SC2016 # expanded by eval, at each poll
    wait_until 60000 eval '[ "$(st workers --json | grep -o "\"[^\"]*:$pid+[0-9]*\"" | wc -l)" -ge 3 ]' ||
        fail "3 TaskProcessors expected: $(st workers --json)"
    w=$(st workers --json | grep -o "\"[^\"]*:$pid+[0-9]*\"" | wc -l)
    [ "$w" = 3 ] || fail "$w TaskProcessors, expected 3: $(st workers --json)"
    ok "minTaskProcessors = maxTaskProcessors = 3: three TaskProcessors"
    stop_run
}

# --------------------------------------------------------------- two_runs ---
# Two `stellar run` of one app, with http.listen in stellar.json: the way
# to add processors on one machine. The first serves the dashboard; the
# second finds the address taken, says so in one line, and processes jobs.
two_runs() {
    local app=$tmp/app out=$tmp/out.txt port body rc=0 err n pid
    copy_example_app "$app"
    cd "$app"

    # The first takes a free port from the kernel (port 0 in stellar.json);
    # then stellar.json names that port, already taken, for the second.
    sed 's/"listen": "127.0.0.1:8080"/"listen": "127.0.0.1:0"/' stellar.json >cfg.tmp
    mv cfg.tmp stellar.json
    grep -q '"listen": "127.0.0.1:0"' stellar.json || fail "no http.listen in examples/app/stellar.json"
    start_run "$app"
    port=$(http_port)
    [ -n "$port" ] || fail "no HTTP port in the log of the first stellar run"
    sed "s/\"listen\": \"127.0.0.1:0\"/\"listen\": \"127.0.0.1:$port\"/" stellar.json >cfg.tmp
    mv cfg.tmp stellar.json

    (cd "$app" && exec "$STELLAR_BIN" run) >"$tmp/run2.log" 2>&1 &
    run2_pid=$!
    wait_until 60000 grep -qs "http: 127.0.0.1:$port (from stellar.json) is in use" "$tmp/run2.log" ||
        fail "the second stellar run did not log that 127.0.0.1:$port is in use"
    n=$(grep -c "127.0.0.1:$port" "$tmp/run2.log")
    [ "$n" = 1 ] || fail "the second stellar run logged $n lines about the address, expected 1"
    wait_until 60000 grep -qs 'started [0-9]* TaskProcessor' "$tmp/run2.log" ||
        fail "the second stellar run started no TaskProcessors"
    grep -q 'dashboard and API on' "$tmp/run2.log" &&
        fail "the second stellar run claims to serve HTTP"
    body=$(http_get "$port" /api/stats) || fail "GET /api/stats on the first run's port $port failed"
    case $body in "{"*"}") ;; *) fail "GET /api/stats on port $port: $body" ;; esac
    ok "second stellar run: one line says 127.0.0.1:$port is in use; it runs on; the first serves it"

    # --http on the command line: an address that cannot be had is an
    # error (no processors, so that it takes no job meanwhile).
    err=$(timeout 60 "$STELLAR_BIN" run --processors 0 --no-scheduler --http "127.0.0.1:$port" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 1 ] || fail "stellar run --http 127.0.0.1:$port (taken): exit $rc, expected 1: $err"
    grep -q "^stellar run: --http 127.0.0.1:$port: the address is in use" <<<"$err" ||
        fail "stellar run --http on a taken address: $err"
    ok "stellar run --http on a taken address: exit 1, $(grep "^stellar run: " <<<"$err")"

    for n in 1 2 3 4; do
        st enqueue appendLine "{\"path\":\"$out\",\"line\":\"both $n\"}" >/dev/null ||
            fail "stellar enqueue appendLine"
    done
    wait_until 60000 has_line "$out" "both 4" || fail "appendLine did not run with two processes"
    ok "jobs run with two processes"

    # The second alone: only it can run this job.
    stop_run
    kill -0 "$run2_pid" 2>/dev/null || fail "the second stellar run exited with the first"
    st enqueue appendLine "{\"path\":\"$out\",\"line\":\"second\"}" >/dev/null ||
        fail "stellar enqueue appendLine"
    wait_until 60000 has_line "$out" second ||
        fail "the second stellar run did not process a job within 60 s"
    grep -q "processed:[^\"]*:$run2_pid+[0-9]*\"" <<<"$(st stats --json)" ||
        fail "stats count no job for the second process ($run2_pid): $(st stats --json)"
    ok "the second stellar run processes jobs on its own"

    pid=$run2_pid
    run2_pid=""
    stop_pid "$pid"
    ok "SIGTERM: the second stellar run exits 0"
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
new_app | example_app | manage | config | two_runs | embed) "$scenario" ;;
*) fail "unknown scenario $scenario" ;;
esac
passed=1
