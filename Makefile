# Nimbus: `make run` serves on :3000, `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
# Where the microVM driver's kernel, initramfs and images are built and kept.
export NIMBUS_MICROVM_DIR ?= /var/cache/nimbus/microvm

.PHONY: run build test fuzz deps docker microvm vet fmt soak

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
# tests send nothing to a registry. testgate prints results, failures and
# skips; with CI set it fails on a skip not listed in .ci/skips.
test: deps docker microvm
	$(GO) build -o bin/testgate ./scripts/testgate
	set -o pipefail; NIMBUS_DOCKER_PULL=never $(GO) test -race -p 1 -count=1 -timeout 15m -json ./... | ./bin/testgate -allow .ci/skips
	@# What the race detector would distort, with the machine to itself: the
	@# benchmark against its reference (best of up to three short runs, with
	@# tolerances a loaded machine does not cross) and the cost of recording
	@# a call against its budget.
	set -o pipefail; NIMBUS_DOCKER_PULL=never $(GO) test -count=1 -json -run 'TestBenchWithinTolerance|TestRecordCostWithinBudget|TestAuthCostWithinBudget' ./internal/bench/ ./internal/metrics/ ./internal/auth/ | ./bin/testgate -allow .ci/skips
	$(MAKE) fuzz

# fuzz runs each fuzz target for a short, fixed time (FUZZTIME) from its seed
# corpus: no panic, no 5xx, nothing accepted that is unsafe to write.
FUZZTIME ?= 10s
# A failure that wrote no failing input (Go's fuzzing engine fails so now
# and then as -fuzztime ends) is run again; see scripts/fuzz.sh.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh FuzzNormalize ./internal/fn
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh FuzzConn ./internal/driver
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh FuzzAPI ./internal/api
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh FuzzUnpack ./internal/build

# soak runs test/soak for an hour (docs/soak.md): warm calls at half the
# measured capacity with cold starts, errors, timeouts, OOM kills and
# create/update/delete churn, sampling the server every 10 s and failing on
# growth of its memory, goroutines, fds, threads, child processes or
# cgroups. make test runs a 2-minute version; this one writes its figures
# to docs/soak-figures.md.
soak: deps
	NIMBUS_SOAK=1h NIMBUS_SOAK_REPORT=$(CURDIR)/docs/soak-figures.md $(GO) test -count=1 -v -timeout 70m -run '^TestSoak$$' ./test/soak/

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
