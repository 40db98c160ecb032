# Nimbus: `make run` serves on :3000, `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go

.PHONY: run build test deps docker vet fmt

run: build deps
	./bin/nimbus serve

build:
	$(GO) build -o bin/nimbus ./cmd/nimbus

# deps installs what the runtimes and tests need when it is missing.
deps:
	@./scripts/deps.sh

# docker installs and starts dockerd when missing and builds the runtime
# images the docker driver uses when no registry is reachable.
docker:
	@./scripts/docker.sh

test: deps
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
