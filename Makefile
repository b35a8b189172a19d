# The two commands of the README:
#   make example   builds examples/bios.vmdb into bios.img
#   make check     runs the whole test suite (installs missing host packages first when root)

GO ?= go
PACKAGES := $(shell grep -v '^\#' .ci/host-packages | grep -v '^$$')

.PHONY: all build deps check test-short example fuzz clean

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

check: deps
	$(GO) vet ./...
	$(GO) test -timeout 80m ./...

test-short:
	$(GO) test -short ./...

example: deps build
	./bin/vmdb2 -v examples/bios.vmdb --output bios.img --rootfs-tarball bios.tar.zst

# Run each fuzz target for FUZZTIME (default 1m).
FUZZTIME ?= 1m
fuzz:
	$(GO) test ./steps -run '^$$' -fuzz FuzzLoadSpec -fuzztime $(FUZZTIME)
	$(GO) test ./partition -run '^$$' -fuzz FuzzParseImageSize -fuzztime $(FUZZTIME)
	$(GO) test ./partition -run '^$$' -fuzz FuzzParsePosition -fuzztime $(FUZZTIME)

clean:
	rm -rf bin
