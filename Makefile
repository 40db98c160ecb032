# Nimbus: `make run` serves on :3000, `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
# Where the microVM driver's kernel, initramfs and images are built and kept.
export NIMBUS_MICROVM_DIR ?= /var/cache/nimbus/microvm

.PHONY: run build test deps docker microvm vet fmt

run: build deps
	./bin/nimbus serve

# build links in the version git describes (nimbus version); without git,
# the binary reads the commit from its build info.
build:
	$(GO) build -ldflags "-X main.version=$$(git describe --tags --always --dirty 2>/dev/null)" -o bin/nimbus ./cmd/nimbus

# deps installs what the runtimes and tests need when it is missing.
deps:
	@./scripts/deps.sh

# docker installs and starts dockerd when missing and builds the runtime
# images the docker driver uses when no registry is reachable.
docker:
	@./scripts/docker.sh

# microvm installs QEMU and builds the microVM driver's artifacts from
# Debian's packages (kept in NIMBUS_MICROVM_DIR for the next run).
microvm:
	@./scripts/microvm.sh

# test installs and starts everything the tests use (python3, node, chromium,
# dockerd and its runtime images, QEMU and the microVM artifacts), then runs
# every test, one package at a time (the microVM suite emulates CPUs and
# would starve timing-sensitive tests beside it). Images are never pulled:
# tests send nothing to a registry.
test: deps docker microvm
	NIMBUS_DOCKER_PULL=never $(GO) test -race -p 1 -count=1 -timeout 15m ./...
	@# The benchmark's ratios, without the race detector and with the machine
	@# to itself: fails when one is more than 2x worse than the reference.
	NIMBUS_DOCKER_PULL=never $(GO) test -count=1 -run TestRatiosHaveNotRegressed ./internal/bench/

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
