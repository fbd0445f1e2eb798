#!/bin/sh
# checkDisk: a periodic command task (docs/tasks.md) in shell.
#
# It runs in its task file's folder, with STELLAR_APP (the app's folder)
# and STELLAR_BACKEND in its environment. Its output goes to the log; a
# non-zero exit fails the job with the last line it wrote to stderr.
# `stellar enqueue` queues a follow-up job on the same backend (`stellar
# run` puts its own folder at the end of PATH for its commands).
set -eu
free=$(df -Pk "$STELLAR_APP" | awk 'NR == 2 { print $4 }')
[ -n "$free" ] || { echo "checkDisk: df printed nothing for $STELLAR_APP" >&2; exit 1; }
echo "$((free / 1024)) MiB free in $STELLAR_APP"
stellar enqueue countWords "{\"text\":\"$free KiB free at $(date -u +%H:%M:%S)\"}" >/dev/null
