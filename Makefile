# The two commands of the README:
#   make example   builds examples/bios.vmdb into bios.img
#   make check     runs the whole test suite (installs missing host packages first when root)

GO ?= go
PACKAGES := $(shell grep -v '^\#' .ci/host-packages | grep -v '^$$')

.PHONY: all build deps binfmt-ppc64le check test-short example fuzz clean

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
	@$(MAKE) --no-print-directory binfmt-ppc64le

# examples/ppc64el.vmdb is built on other architectures through qemu-user:
# register qemu-user-static's ppc64le binfmt_misc handler (flags POF: F so
# that the emulator is found inside the build's namespace) when root and not
# registered yet, mounting binfmt_misc if needed. Only ppc64le, the one the
# tests build; a build for another architecture is refused with the line
# that registers it.
BINFMT_PPC64LE := /usr/lib/binfmt.d/qemu-ppc64le.conf
binfmt-ppc64le:
	@if [ "$$(id -u)" = 0 ] && [ -f $(BINFMT_PPC64LE) ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-ppc64le ]; then \
	  { [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; } && \
	  grep -v '^#' $(BINFMT_PPC64LE) > /proc/sys/fs/binfmt_misc/register && \
	  echo "registered the qemu-ppc64le binfmt_misc handler" || \
	  echo "could not register the qemu-ppc64le binfmt_misc handler: ppc64el builds will be refused" >&2; \
	fi

check: deps
	$(GO) vet ./...
	$(GO) test -timeout 80m ./...

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
