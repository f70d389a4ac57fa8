# Thin wrapper over CMake presets. Every target that builds installs the Debian packages it needs first,
# so `make run` and `make test` work as root on a fresh Debian 12 machine.
# Targets: deps build run test test-kernels test-release test-asan test-fuzz bench install deb clean

DEPS := cmake g++ make pkg-config git \
        libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev libtomlplusplus-dev \
        libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev \
        libgtest-dev libgmock-dev libbenchmark-dev \
        dbus-daemon systemd util-linux mandoc \
        dpkg-dev python3-prometheus-client \
        clang-14 libclang-rt-14-dev strace faketime libfaketime python3

JOBS ?= $(shell nproc)
FRAGTUNED := build/release/src/daemon/fragtuned

.PHONY: test-kernels test-real-kernel deps build run test test-release test-asan test-fuzz bench install deb clean

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

# The daemon's main job on the live kernel, in the foreground, until Ctrl-C: active mode with the
# shipped configuration, persisting to build/run instead of /etc/sysctl.d, originals restored on exit.
# No system bus is assumed (--no-bus); `fragtuned --sample` shows what it sees.
RUN_DIR := $(CURDIR)/build/run
run: build
	mkdir -p $(RUN_DIR)
	$(FRAGTUNED) --no-bus --mode active --on-exit restore --config $(CURDIR)/config/fragtune.toml \
	  --persist-path $(RUN_DIR)/90-fragtune.conf --state-path $(RUN_DIR)/state.toml

# Opt-in: the tests that write the live kernel's /proc/sys/vm (restoring every value).
test-real-kernel: build
	ctest --test-dir build/release -L real-kernel --output-on-failure

# The real-kernel matrix: Debian's own 5.10 (bullseye), 6.1 (bookworm) and 6.12 (trixie) kernels booted
# under qemu (TCG) with fragtuned and tests/kernels/kernel_check.cpp in a small initramfs; see
# tests/kernels/README.md. Kernel packages and apt lists are cached under /var/tmp/fragtune-kernels.
test-kernels: deps
	@$(MAKE) --no-print-directory deps DEPS="qemu-system-x86 busybox-static cpio python3"
	cmake --preset release
	cmake --build --preset release -j $(JOBS) --target fragtuned kernel_check
	tests/kernels/run --build-dir build/release

test-release: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)
	ctest --preset release

test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan

# Every fuzz target for FUZZ_SECONDS (default 15) each, two at a time: fuzz/README.md.
FUZZ_SECONDS ?= 15
test-fuzz: deps
	cmake --preset fuzz -DFRAGTUNE_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build --preset fuzz -j $(JOBS)
	ctest --preset fuzz

test: test-release test-asan test-fuzz

# Installs the release build into the system (/usr, /etc, /lib/systemd/system); DESTDIR is honoured.
install: build
	cmake --install build/release --prefix /usr

# The Debian package, build/release/fragtune_<version>_<arch>.deb (cmake/Package.cmake).
deb: build
	cd build/release && cpack -G DEB

# Benchmarks on the live kernel (needs root; see bench/README.md): the Google Benchmark programs,
# bench/fragbench (~4 min; interleaved trials, restores every sysctl) and bench/overhead (2 min). Both
# scripts write their latest table into bench/README.md.
bench: deps
	@$(MAKE) --no-print-directory deps DEPS="gnuplot-nox earlyoom"
	cmake --preset release
	cmake --build --preset release -j $(JOBS)
	for b in build/release/bench/*_bench; do $$b --benchmark_min_time=0.2 || exit 1; done
	bench/fragbench --build build/release --out build/fragbench --readme bench/README.md
	bench/overhead --build build/release --out build/overhead --readme bench/README.md

clean:
	rm -rf build
