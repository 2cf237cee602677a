# Keeper's everyday commands. `make help` lists them. CI (.ci/run) runs the same checks.
.DEFAULT_GOAL := help
GO ?= go

.PHONY: help run build test test-short lint fmt bench bench-wrk experiment clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## run the server on the embedded SQLite default (data/keeper.db)
	$(GO) run ./cmd/keeper

build: ## build bin/keeper
	$(GO) build -o bin/keeper ./cmd/keeper

test: ## run every test with the race detector, as CI does
	$(GO) test -race -count=1 ./...

test-short: ## run the tests without the race detector and the slow cases
	$(GO) test -short ./...

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

fmt: ## format every Go file
	gofmt -w $$(git ls-files '*.go')

bench: ## Go benchmarks of the hot paths (handlers, cache, store, hashing, tokens)
	$(GO) test -run '^$$' -bench . -benchmem ./httpapi ./kvcache ./sqlite ./auth

bench-wrk: ## Keeper's GET paths against a bare net/http handler under wrk (needs wrk)
	scripts/wrk-compare.sh 3 5 100

experiment: ## the load experiment: plots and summary under experiment/results/
	experiment/run.sh

clean: ## remove build output (not data/)
	rm -rf bin
