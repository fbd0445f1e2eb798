#!/bin/sh
# scripts/check-format.sh [FILE...]: checks that the C sources are formatted
# as .clang-format says (clang-format --dry-run --Werror), without changing
# them. With no FILE: every tracked *.c and *.h under src/ include/ cmd/
# tests/ examples/ bench/ fuzz/. Prints each file that differs and exits 1
# if any does; `clang-format -i FILE` formats one. CI runs this.
# CLANG_FORMAT names the program (default clang-format; 14 or later).
set -eu
cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-clang-format}
dirs="src include cmd tests examples bench fuzz"

command -v "$cf" >/dev/null 2>&1 || {
    echo "check-format: $cf is not on PATH (apt-get install clang-format)" >&2
    exit 2
}
major=$("$cf" --version | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p')
if [ -z "$major" ] || [ "$major" -lt 14 ]; then
    echo "check-format: needs clang-format 14 or later: $("$cf" --version)" >&2
    exit 2
fi

list=$(mktemp "${TMPDIR:-/tmp}/stellar-format-XXXXXX")
out=$(mktemp "${TMPDIR:-/tmp}/stellar-format-XXXXXX")
trap 'rm -f "$list" "$out"' EXIT
if [ $# -gt 0 ]; then
    printf '%s\n' "$@" >"$list"
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files only: no node_modules, no build output.
    # shellcheck disable=SC2086 # $dirs is a list of folders.
    git ls-files -- $dirs | grep -E '\.[ch]$' >"$list" || true
else
    # shellcheck disable=SC2086
    find $dirs -name node_modules -prune -o -type f \( -name '*.c' -o \
        -name '*.h' \) -print 2>/dev/null | sort >"$list"
fi

total=0 bad=0
while IFS= read -r f; do
    total=$((total + 1))
    if ! "$cf" --style=file --dry-run --Werror "$f" >"$out" 2>&1; then
        bad=$((bad + 1))
        n=$(grep -c 'error:' "$out" || true)
        [ "$bad" -eq 1 ] && echo "check-format: not formatted as .clang-format says:"
        echo "  $f ($n places)"
    fi
done <"$list"

if [ "$total" -eq 0 ]; then
    echo "check-format: no C files found" >&2
    exit 2
fi
if [ "$bad" -gt 0 ]; then
    echo "check-format: $bad of $total files differ; 'clang-format --dry-run" \
        "FILE' shows where, 'clang-format -i FILE' fixes one"
    exit 1
fi
echo "check-format: $total files formatted as .clang-format says"
