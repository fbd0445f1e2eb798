#!/bin/sh
# run.sh BUILD_DIR CC VERSION: Stellar as its users get it. Installs the
# build into a temporary prefix (cmake --install --prefix), then builds
# consumer/main.c against that install and runs it, three ways:
#   - pkg-config, shared library (stellar.pc: Requires jansson only);
#   - pkg-config --static, static library (Requires.private, Libs.private);
#   - CMake, find_package(stellar) and the imported target stellar::stellar.
# Each run must print the VERSION CMake read from stellar.h.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 BUILD_DIR CC VERSION" >&2; exit 2; }
build=$1 cc=$2 version=$3
cmake=${CMAKE:-cmake}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stellar-package-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# check NAME PROGRAM: runs a built consumer on a new SQLite file.
check() {
    out=$("$2" "$tmp/$1.db") || fail "$1: the consumer failed"
    [ "$out" = "stellar $version" ] ||
        fail "$1: the consumer printed '$out', expected 'stellar $version'"
    echo "ok   $1"
}

echo "== cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log" >&2; fail "cmake --install"; }
pc=$(find "$prefix" -name stellar.pc)
[ -n "$pc" ] || fail "no stellar.pc installed"
libdir=$(dirname "$(dirname "$pc")")
PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH

# stellar.pc: the header's version; only jansson is public, the rest
# (storage, HTTP) only for static linking.
[ "$(pkg-config --modversion stellar)" = "$version" ] ||
    fail "stellar.pc has version $(pkg-config --modversion stellar), not $version"
[ "$(pkg-config --print-requires stellar)" = jansson ] ||
    fail "stellar.pc Requires: $(pkg-config --print-requires stellar | tr '\n' ' ')(expected jansson only)"
case " $(pkg-config --libs stellar) " in
*" -lsqlite3 "* | *" -lhiredis "* | *" -lmicrohttpd "*)
    fail "pkg-config --libs stellar names private libraries: $(pkg-config --libs stellar)" ;;
esac
echo "ok   stellar.pc: $(pkg-config --cflags --libs stellar)"

# shellcheck disable=SC2046 # pkg-config's output is meant to be split.
"$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/pc-shared" \
    "$here/consumer/main.c" $(pkg-config --cflags --libs stellar) \
    -Wl,-rpath,"$libdir" || fail "build with pkg-config (shared)"
readelf -d "$tmp/pc-shared" | grep -q 'NEEDED.*libstellar\.so' ||
    fail "pkg-config (shared): the program does not use libstellar.so"
check pkg-config-shared "$tmp/pc-shared"

# The static library: -lstellar from the .a, what stellar.pc lists for it
# (Libs.private, Requires.private) as the system's shared libraries. The
# walk stops there (pkgconf's --maximum-traverse-depth; 3 is stellar.pc,
# the packages it requires and their own private libraries): a full static
# walk also names the private libraries of those, such as gnutls', whose
# development packages a system need not have.
if pkg-config --maximum-traverse-depth=3 --exists stellar 2>/dev/null; then
    static_libs=$(pkg-config --static --libs --maximum-traverse-depth=3 stellar |
        sed 's/-lstellar\b/-Wl,-Bstatic -lstellar -Wl,-Bdynamic/')
    # shellcheck disable=SC2046,SC2086
    "$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/pc-static" \
        "$here/consumer/main.c" $(pkg-config --cflags stellar) $static_libs ||
        fail "build with pkg-config --static"
    if readelf -d "$tmp/pc-static" | grep -q 'NEEDED.*libstellar'; then
        fail "pkg-config --static: the program uses libstellar.so"
    fi
    check pkg-config-static "$tmp/pc-static"
else
    echo "note: static link not checked (this pkg-config has no" \
        "--maximum-traverse-depth; pkgconf has)"
fi

echo "== cmake: find_package(stellar), stellar::stellar"
if ! { "$cmake" -S "$here/consumer" -B "$tmp/cmake" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DSTELLAR_EXPECT_DIR="$libdir/cmake/stellar" &&
    "$cmake" --build "$tmp/cmake"; } >"$tmp/cmake.log" 2>&1; then
    cat "$tmp/cmake.log" >&2
    fail "build with find_package(stellar)"
fi
grep -- '-- stellar ' "$tmp/cmake.log"
check find_package "$tmp/cmake/consumer"
