#!/bin/sh
# check.sh DIR: the syntax check of the Redis backend's Lua scripts, as the
# build assembles them (cmake/lua.cmake writes them to DIR), with the
# compiler of Lua 5.1, the language Redis runs: "luac -p" parses each one
# and writes nothing. Exits 77 (skip) when no luac is installed (Debian:
# lua5.1).
set -e
dir=${1:?usage: check.sh DIR}
luac=""
for c in luac5.1 luac; do
    if command -v "$c" >/dev/null 2>&1; then
        luac=$c
        break
    fi
done
if [ -z "$luac" ]; then
    echo "SKIP: no luac (Debian package lua5.1)"
    exit 77
fi
n=0
for f in "$dir"/*.lua; do
    [ -e "$f" ] || continue
    "$luac" -p "$f"
    n=$((n + 1))
done
if [ "$n" -eq 0 ]; then
    echo "no assembled scripts in $dir" >&2
    exit 1
fi
echo "$n scripts parse as Lua ($luac)"
