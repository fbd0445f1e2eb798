#!/bin/sh
# fuzz/run.sh [SECONDS]: builds fuzz_payload (libFuzzer + ASan + UBSan) with
# clang in build-fuzz/ and fuzzes the payload decoder and the JSON encoder
# for SECONDS (default 60), starting from fuzz/corpus (left unchanged: new
# inputs go to build-fuzz/fuzz-corpus). Exit 0: nothing found; otherwise
# the crashing input is in build-fuzz/fuzz-artifacts/.
#
# Needs clang and its libFuzzer runtime: Debian/Ubuntu clang 14 ships it
# in libclang-common-14-dev (pulled in by clang); clang 15 and later in
# libclang-rt-NN-dev.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
build=${FUZZ_BUILD:-build-fuzz}
cc=${FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz: $cc is not installed (apt install clang)" >&2
    exit 2
fi
probe=$(mktemp -d "${TMPDIR:-/tmp}/stellar-fuzz-XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! "$cc" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
    cat "$probe/err" >&2
    echo "fuzz: $cc -fsanitize=fuzzer does not link: install libFuzzer (Debian: libclang-rt-NN-dev for clang >= 15)" >&2
    exit 2
fi

cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DSTELLAR_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" --target fuzz_payload -j2
mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts"
exec "$build/fuzz_payload" -max_total_time="$secs" -max_len=65536 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/" \
    "$build/fuzz-corpus" fuzz/corpus
