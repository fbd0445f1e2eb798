# Thin wrapper around CMake, so that make, make test and make install work.
BUILD ?= build
CMAKE_ARGS ?=
APP ?= examples/app

.PHONY: all deps test asan tsan install run bench clean

all:
	@./scripts/deps.sh build
	cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD) -j2

test: all
	@./scripts/deps.sh test
	ctest --test-dir $(BUILD) --output-on-failure -j2

asan:
	$(MAKE) BUILD=build-asan CMAKE_ARGS="-DSTELLAR_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug" test

tsan:
	$(MAKE) BUILD=build-tsan CMAKE_ARGS="-DSTELLAR_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug" test

install: all
	cmake --install $(BUILD)

run: all
	cd $(APP) && ../../$(BUILD)/stellar run

clean:
	rm -rf build build-asan build-tsan
