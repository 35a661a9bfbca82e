# Spine — the two commands are `make run` and `make test`; everything else is for the curious.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
PORT      ?= 7071
BIN       := bin/handler
DEV_ENV    = .stack/dev/env
TEST_ENV   = .stack/test/env
DEV_KEYS  := .stack/dev/keys
STATICCHECK_VERSION := v0.8.2

export GOFLAGS := -buildvcs=false

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install what is missing on a Debian machine (Go is expected; redis-server, PostgreSQL, Node come from apt/npm via the stack script)
	@command -v $(GO) >/dev/null || { echo "Go is required (https://go.dev/dl)"; exit 1; }
	@$(GO) mod download

.PHONY: build
build: ## build the handler binary into bin/
	$(GO) build -o $(BIN) .

.PHONY: functions
functions: ## regenerate functions/<Name>/function.json from the Go registry
	$(GO) run . functions --out functions

.PHONY: run
run: build ## bring up the local stack, migrate, and serve the whole app on PORT (Ctrl-C stops everything)
	@scripts/stack.sh up --name dev >/dev/null
	@set -a; . $(DEV_ENV); set +a; \
	export SPINE_DEV_KEY_DIR=$(CURDIR)/$(DEV_KEYS) SPINE_AUTH_JWKS_FILE=$(CURDIR)/$(DEV_KEYS)/jwks.json \
	  SPINE_AUTH_ISSUER=https://spine.local/dev-issuer SPINE_AUTH_AUDIENCE=spine-api SPINE_STANDALONE=true PORT=$(PORT); \
	$(BIN) devkey >/dev/null; \
	$(BIN) migrate 2>&1 | tail -n 2; \
	echo; echo "Spine is serving on http://127.0.0.1:$(PORT)/api (health: /api/health)"; \
	echo "Mint a token:  make token ARGS='--platform-admin --scopes tenant.read,tenant.manage,audit.read'"; \
	echo "          or   make token ARGS='--tenant <id> --scopes tenant.read,audit.read,audit.write'"; \
	echo "A registered tenant's audit entry: GET /api/audit-entries?tenantId=<id> (arrives through the outbox)."; \
	echo "Ctrl-C stops the server and the local stack."; echo; \
	trap 'scripts/stack.sh down --name dev >/dev/null 2>&1 || true' EXIT; \
	$(BIN) serve || [ $$? -eq 130 ]

.PHONY: token
token: build ## print a dev access token (ARGS='--platform-admin' or ARGS='--tenant <id> --scopes tenant.read')
	@set -a; . $(DEV_ENV); set +a; \
	SPINE_DEV_KEY_DIR=$(CURDIR)/$(DEV_KEYS) SPINE_AUTH_ISSUER=https://spine.local/dev-issuer SPINE_AUTH_AUDIENCE=spine-api \
	  $(BIN) token $(ARGS)

.PHONY: test
test: deps ## bring up an isolated test stack, run every Go test (app + infra), stack down; exit status of the tests
	@scripts/stack.sh up --name test --fast >/dev/null
	@set -a; . $(TEST_ENV); set +a; status=0; \
	$(GO) vet ./... || status=1; \
	if [ $$status -eq 0 ]; then $(GO) test -count=1 -race ./... || status=1; fi; \
	if [ -f infra/go.mod ]; then (cd infra && $(GO) vet ./... && $(GO) test -count=1 ./...) || status=1; fi; \
	scripts/stack.sh down --name test >/dev/null 2>&1 || true; \
	exit $$status

.PHONY: lint
lint: ## go vet + staticcheck (pinned)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: fuzz
fuzz: ## fuzz the invocation decoder for 60s
	$(GO) test -run='^$$' -fuzz=FuzzPayload -fuzztime=60s ./shared/functions/

.PHONY: package
package: ## assemble dist/: host.json, functions/, the linux/amd64 handler (what func start --script-root dist or a zip deploy uses)
	rm -rf dist && mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags='-s -w' -o dist/handler .
	cp host.json dist/
	cp -r functions/. dist/
	@echo "dist/ is ready: $$(ls dist | tr '\n' ' ')"

.PHONY: bench
bench: ## measure the hot paths beside the machine's ceilings (own stack, release build, ~3 min); ARGS='--profile read,register'
	$(GO) run ./bench $(ARGS)

.PHONY: bench-smoke
bench-smoke: ## every bench case for 1 s on small seeds: proves the harness works (CI); no figure is asserted
	$(GO) run ./bench --smoke $(ARGS)

.PHONY: stack-down
stack-down: ## stop every local stack this checkout started
	@for n in dev test bench; do scripts/stack.sh down --name $$n >/dev/null 2>&1 || true; done

.PHONY: clean
clean: stack-down ## remove build output and local stacks
	rm -rf bin dist .stack
