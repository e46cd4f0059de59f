# tcplab: every target sets itself up from a clean clone (a .venv with the
# project and its test tools; Debian packages through apt-get when root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# util-linux: setpriv, with which the tests run tcplab as an unprivileged user;
# tshark: the tests check that other tools read the fixtures in captures/ cleanly;
# fonts-wqy-microhei: a Chinese font (5 MB; fonts-noto-cjk is 90 MB) for the HTML pages' Chinese quote.
DEBIAN_PACKAGES := util-linux tshark chromium fonts-wqy-microhei

.PHONY: install run test bench claims captures selftests-doc kernel-refs image releases clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	@# compat: the checkout goes on sys.path through a plain .pth line. The default editable mode installs an
	@# import hook instead, which every tcplab process loads at start (~10 ms, a quarter of `tcplab --help`).
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat \
	  || $(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@# The checkout is installed editable, so pip compiles none of it; where PYTHONDONTWRITEBYTECODE is set
	@# (CI images often set it) every tcplab process would compile ~70 modules again: ~0.16 s a start.
	$(BIN)/python -m compileall -q lab netns bench
	touch $@

run: $(STAMP)
	$(BIN)/tcplab run --all

captures: $(STAMP)
	$(BIN)/tcplab capture regen

claims: $(STAMP)
	$(BIN)/tcplab claims

# The unit layer needs no privileges: as root it runs as nobody where user namespaces are refused, as a
# user meets it (tests/block_userns.py). The kernel layer sleeps on the kernel's timers most of the time:
# several tests run at once (each in namespaces of its own), then the few that must be alone.
TEST_WORKERS ?= 6
NOBODY_CAPS := --inh-caps=+dac_read_search --ambient-caps=+dac_read_search
AS_NOBODY := $(if $(filter 0,$(shell id -u)),$(BIN)/python tests/block_userns.py /usr/bin/setpriv --reuid=65534 \
  --regid=65534 --clear-groups $(NOBODY_CAPS))
test: $(STAMP)
	$(AS_NOBODY) $(BIN)/pytest -q -p no:cacheprovider tests/unit
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not alone" --ignore=tests/unit
	$(BIN)/pytest -m alone --ignore=tests/unit

# docs/selftests.md: the kernel's packetdrill selftests under packetdrill (the comparison oracle, never a
# dependency: PACKETDRILL names a wrapper taking "4|6 SCRIPT.pkt") and under tcplab. --cached reuses
# packetdrill's results kept in docs/.selftests-packetdrill.json.
SELFTESTS ?= ../shared/oracles/kselftest-packetdrill
PACKETDRILL ?= ../shared/oracles/packetdrill.sh
selftests-doc: $(STAMP)
	$(BIN)/python -m bench.selftests $(SELFTESTS) --packetdrill $(PACKETDRILL) $(if $(CACHED),--cached)

# The course's kernel references (lab/course/kernel_functions.toml) against a Debian Linux source package
# (apt-get download, about 150 MB, kept in .cache/) and this machine's kernel symbols.
KERNEL_SOURCE_PACKAGE ?= linux-source-6.12
kernel-refs: $(STAMP)
	mkdir -p .cache && cd .cache && ls $(KERNEL_SOURCE_PACKAGE)_*.deb >/dev/null 2>&1 || apt-get download $(KERNEL_SOURCE_PACKAGE)
	$(BIN)/python -m tools.kernel_refs .cache/$(KERNEL_SOURCE_PACKAGE)_*.deb --kallsyms

# The container image (Containerfile), with podman or docker, whichever is here (ENGINE=docker to choose;
# BASE=IMAGE builds on another Debian bookworm image, for machines that cannot pull from docker.io;
# ENGINE_FLAGS=--runtime=runc for a podman whose crun refuses a hybrid cgroup hierarchy).
ENGINE ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || (command -v docker >/dev/null 2>&1 && echo docker))
image:
	@if [ -z "$(ENGINE)" ]; then echo "make image: no container engine here; install podman or docker"; exit 0; fi; \
	if ! $(ENGINE) info >/dev/null 2>&1; then \
	  echo "make image: $(ENGINE) cannot run here: $$($(ENGINE) info 2>&1 | tail -n 1)"; exit 1; fi
	rm -rf build/wheels && $(PYTHON) -m pip wheel --quiet --disable-pip-version-check -w build/wheels .
	$(ENGINE) $(ENGINE_FLAGS) build -t tcplab -f Containerfile $(if $(BASE),--build-arg BASE=$(BASE)) .

# The course on other kernel releases (docs/kernels.md): each release's newest Debian image booted with
# virtme-ng (emulated where KVM does not work, so its runs are --slow), the catalogue run there and here,
# merged into docs/releases/claims.{md,zh.md,json}. About three minutes per release without KVM.
RELEASES ?= 6.12 6.1
KERNEL_PACKAGES := qemu-system-x86 busybox-static kmod
releases: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=$$(for p in $(KERNEL_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi; \
	fi
	$(BIN)/pip install -q --disable-pip-version-check -e '.[kernels]'
	mkdir -p build/releases docs/releases
	$(BIN)/tcplab run --all --json > build/releases/host.json || true
	for release in $(RELEASES); do \
	  $(BIN)/tcplab kernels fetch $$release && \
	  $(BIN)/tcplab kernels run $$release -- run --all --json > build/releases/$$release.json || true; \
	done
	$(BIN)/tcplab claims --docs docs/releases --from build/releases/host.json \
	  $(foreach release,$(RELEASES),--from build/releases/$(release).json)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
