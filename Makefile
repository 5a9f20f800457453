# Thin front door over CMake. `make` builds the release binary, `make test` runs the whole
# suite (release, then ASan+UBSan), `make run` runs the main job. Each installs the Debian
# packages it needs first (scripts/install-deps.sh).
MAKEFLAGS += --no-print-directory
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build/release

.PHONY: all deps build test run fuzz format clean

all: build

deps:
	@scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target vela

test: deps
	@scripts/test.sh

run: build
	@scripts/run.sh $(BUILD)/vela

# Short libFuzzer runs of every target (clang); FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	@scripts/format.sh

clean:
	rm -rf build
