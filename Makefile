# Thin wrapper over CMake presets. Every target that builds installs the Debian packages it needs first,
# so `make run` and `make test` work as root on a fresh Debian 12 machine.
# Targets: deps build run test test-release test-asan bench install deb clean

DEPS := cmake g++ make pkg-config git \
        libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev libtomlplusplus-dev \
        libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev \
        libgtest-dev libgmock-dev libbenchmark-dev \
        dbus-daemon systemd util-linux mandoc

JOBS ?= $(shell nproc)
FRAGTUNED := build/release/src/daemon/fragtuned

.PHONY: deps build run test test-release test-asan bench clean

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

# The daemon's main job on the live kernel, in the foreground, until Ctrl-C.
run: build
	$(FRAGTUNED) --sample --interval 2s

test-release: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)
	ctest --preset release

test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan

test: test-release test-asan

clean:
	rm -rf build
