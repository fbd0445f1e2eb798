# Thin wrapper around CMake, so that make, make test and make install work.
#
# `make` only builds: when a Debian package it needs is missing it says
# which and stops. `make deps` installs them (apt-get, and npm ci for the
# node suites); `make run` and `make test` call it first.
BUILD ?= build
CMAKE_ARGS ?=
APP ?= examples/app
DEPS_FOR ?= test
# Suites run at once by `make test`: most of their time is spent waiting
# (timeouts, restarts, stuck workers), so more than 2 cores' worth. The
# sanitizer builds use the CPU several times more: AddressSanitizer runs 3
# at once, ThreadSanitizer 2 (at 3, on a machine loaded by other builds,
# the 16 MiB payload fault tests took minutes).
TEST_JOBS ?= 4
ASAN_TEST_JOBS ?= 3
TSAN_TEST_JOBS ?= 2

.PHONY: all deps test valgrind asan tsan install run bench clean

define cmake_build
cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
cmake --build $(BUILD) -j2
endef

all:
	@./scripts/deps.sh check build
	$(cmake_build)

deps:
	@./scripts/deps.sh install $(DEPS_FOR)

# ctest's console output also goes to $(BUILD)/ctest.log, from which the
# last lines list the tests that did not run here, and why. Every suite
# but the long valgrind run, which `make valgrind` runs.
test: deps
	$(cmake_build)
	@rc=0; ctest --test-dir $(BUILD) --output-on-failure -j$(TEST_JOBS) -LE valgrind \
		-O $(BUILD)/ctest.log || rc=$$?; \
	./scripts/test-summary.sh $(BUILD) $(BUILD)/ctest.log; exit $$rc

# 10,000 jobs per backend through a worker under valgrind (minutes).
valgrind: deps
	$(cmake_build)
	STELLAR_VALGRIND=1 ctest --test-dir $(BUILD) -L valgrind --output-on-failure

asan:
	$(MAKE) BUILD=build-asan CMAKE_ARGS="-DSTELLAR_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug" TEST_JOBS=$(ASAN_TEST_JOBS) test

tsan:
	$(MAKE) BUILD=build-tsan CMAKE_ARGS="-DSTELLAR_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug" TEST_JOBS=$(TSAN_TEST_JOBS) test

install: all
	cmake --install $(BUILD)

run: DEPS_FOR = run
run: deps
	$(cmake_build)
	cd $(APP) && ../../$(BUILD)/stellar run

# Benchmarks against node-resque and the limits (bench/README.md); not part
# of `make test`. A Release build of its own in build-bench.
bench: deps
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-bench -j2
	cmake -S bench -B build-bench/bench -DCMAKE_BUILD_TYPE=Release \
		-DSTELLAR_BUILD=$(CURDIR)/build-bench >/dev/null
	cmake --build build-bench/bench -j2
	bench/run.sh build-bench

clean:
	rm -rf build build-asan build-tsan build-clang build-gcc-no-* build-clang-no-*
