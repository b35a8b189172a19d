# The two commands of the README:
#   make example   builds examples/bios.vmdb into bios.img
#   make check     runs the whole test suite (installs missing host packages first when root)

GO ?= go
PACKAGES := $(shell grep -v '^\#' .ci/host-packages | grep -v '^$$')

.PHONY: all build deps binfmt check check-long test-short example fuzz clean

all: build

build:
	$(GO) build -o bin/vmdb2 ./cmd/vmdb2

# Install the Debian packages listed in .ci/host-packages that are missing.
deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "missing host packages:$$missing (run 'make deps' as root, or apt-get install them)" >&2; \
	  fi; \
	fi
	@$(MAKE) --no-print-directory binfmt

# Foreign builds (examples/ppc64el.vmdb, examples/arm64.vmdb, armhf, armel,
# riscv64) run the target's programs through qemu-user: register
# qemu-user-static's binfmt_misc handlers for BINFMT_ARCHES (qemu's names;
# arm serves armhf and armel) from its /usr/lib/binfmt.d lines, which carry
# the F flag (the emulator is opened at registration, so it is found inside
# the build's namespace). Each only when it is missing, and only these:
# a build for another architecture is refused with the one line that
# registers it. Needs root (a writable register file); binfmt_misc is
# mounted first when it is not. BINFMT_MISC and BINFMT_CONF are variables
# so that the tests can point them at fake directories.
BINFMT_ARCHES := aarch64 arm riscv64 ppc64le
BINFMT_MISC := /proc/sys/fs/binfmt_misc
BINFMT_CONF := /usr/lib/binfmt.d
binfmt:
	@if [ ! -e $(BINFMT_MISC)/register ] && [ "$$(id -u)" = 0 ]; then \
	  mount -t binfmt_misc binfmt_misc $(BINFMT_MISC) || true; \
	fi; \
	for q in $(BINFMT_ARCHES); do \
	  conf=$(BINFMT_CONF)/qemu-$$q.conf; \
	  [ ! -e $(BINFMT_MISC)/qemu-$$q ] || continue; \
	  if [ ! -f $$conf ]; then \
	    echo "no $$conf (install qemu-user-static): $$q builds will be refused" >&2; continue; \
	  fi; \
	  if [ ! -w $(BINFMT_MISC)/register ]; then \
	    echo "not registering the qemu-$$q binfmt_misc handler (run 'make binfmt' as root): $$q builds will be refused" >&2; continue; \
	  fi; \
	  grep -v '^#' $$conf > $(BINFMT_MISC)/register && \
	    echo "registered the qemu-$$q binfmt_misc handler" || \
	    echo "could not register the qemu-$$q binfmt_misc handler: $$q builds will be refused" >&2; \
	done

check: deps
	$(GO) vet ./...
	$(GO) test -timeout 80m ./...

# The tests beyond check's budget (testreq.Long): the Raspberry Pi 4
# image and the armhf example, built through qemu-user and booted.
check-long: deps
	VMDB2_TEST_LONG=1 $(GO) test -timeout 80m -run '^TestLong' -v ./cmd/vmdb2/

test-short:
	$(GO) test -short ./...

example: deps build
	./bin/vmdb2 -v examples/bios.vmdb --output bios.img --rootfs-tarball bios.tar.zst

# Run every fuzz target of the repository (each `func FuzzX` of a _test.go
# file) for FUZZTIME (default 1m). The minimisation of each new input is
# capped at FUZZMINIMIZE runs: Go's default (60 s per input) leaves the
# targets that write files (FuzzOpen, FuzzUnpack) almost no time to fuzz.
FUZZTIME ?= 1m
FUZZMINIMIZE ?= 200x
fuzz:
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
	    echo "== $$(dirname $$file) $$target"; \
	    $(GO) test $$(dirname $$file) -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE); \
	  done; \
	done

clean:
	rm -rf bin
