# Spine — the two commands are `make run` and `make test`; everything else is for the curious.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
PORT      ?= 7071
FUNC_PORT ?= 7072
BIN       := bin/handler
DEV_ENV    = .stack/dev/env
TEST_ENV   = .stack/test/env
RUN_ENV    = .stack/dev/run.env
DEV_KEYS  := .stack/dev/keys
DEV_AUDIENCE := spine-api
NO_STACK   = no local stack: run `make run` first (in another terminal)
STATICCHECK_VERSION := v0.8.2

export GOFLAGS := -buildvcs=false

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install what is missing on Debian (Go is expected): Go modules; PostgreSQL, Redis, Node.js, curl, jq (apt, as root); Azurite (npm ci)
	@command -v $(GO) >/dev/null || { echo "Go is required (https://go.dev/dl)"; exit 1; }
	@$(GO) mod download
	@if [ -f infra/go.mod ]; then cd infra && $(GO) mod download; fi
	@scripts/stack.sh deps

.PHONY: build
build: ## build the handler binary into bin/
	$(GO) build -o $(BIN) .

.PHONY: functions
functions: ## regenerate functions/<Name>/function.json and infra's copy of the event catalog from the module list
	$(GO) run . functions --out functions
	$(GO) run . events --write

.PHONY: run
run: ## bring up the local stack, migrate, and serve the whole app on PORT (Ctrl-C stops everything; one per checkout)
	$(GO) build -o $(BIN).next .
	@PORT=$(PORT) AUDIENCE=$(DEV_AUDIENCE) scripts/run.sh $(BIN)

.PHONY: run-func
run-func: ## the real Functions host (Core Tools' func start) on FUNC_PORT (7072) against make run's stack
	@command -v func >/dev/null || { echo "run-func: Azure Functions Core Tools (func) is not installed. It cannot be installed on these build machines (its npm package downloads the host from a CDN they cannot reach); elsewhere: npm i -g azure-functions-core-tools@4. Here: make run." >&2; exit 1; }
	@scripts/stack.sh status --name dev >/dev/null 2>&1 || { echo '$(NO_STACK)' >&2; exit 1; }
	@$(MAKE) --no-print-directory package
	cd dist && func start --port $(FUNC_PORT)

.PHONY: token
token: build ## print an access token from make run's authorization server, through a dev client (ARGS='--platform-admin --scopes ...' or ARGS='--tenant <id> --scopes ...')
	@[ -f $(DEV_ENV) ] && [ -f $(RUN_ENV) ] || { echo '$(NO_STACK)' >&2; exit 1; }
	@set -a; . ./$(DEV_ENV); . ./$(RUN_ENV); set +a; $(BIN) token $(ARGS)

.PHONY: test
test: deps ## bring up an isolated test stack, run every Go test (app + infra), stack down; exit status of the tests
	@trap 'scripts/stack.sh down --name test >/dev/null 2>&1 || true' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	scripts/stack.sh up --name test --fast >/dev/null; \
	set -a; . $(TEST_ENV); set +a; status=0; \
	$(GO) vet ./... || status=1; \
	if [ $$status -eq 0 ]; then $(GO) test -count=1 -race ./... || status=1; fi; \
	if [ -f infra/go.mod ]; then (cd infra && $(GO) vet ./... && $(GO) test -count=1 ./...) || status=1; fi; \
	exit $$status

.PHONY: lint
lint: tidy-check ## go.mod tidy (app + infra), go vet + staticcheck (pinned)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: tidy-check
tidy-check: ## fail when go mod tidy would change go.mod or go.sum (app or infra)
	@for m in . infra; do \
	  [ -f $$m/go.mod ] || continue; \
	  if ! diff=$$(cd $$m && $(GO) mod tidy -diff 2>&1); then \
	    printf '%s\n' "$$diff"; \
	    echo "$$m/go.mod or go.sum is not tidy: run (cd $$m && go mod tidy) and commit the result" >&2; exit 1; \
	  fi; \
	done

.PHONY: fuzz
fuzz: ## fuzz the invocation decoder for 60s
	$(GO) test -run='^$$' -fuzz=FuzzPayload -fuzztime=60s ./shared/functions/

.PHONY: package
package: ## assemble dist/ (host.json, functions/, the linux/amd64 handler) + dist/local.settings.json from make run's stack
	rm -rf dist && mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags='-s -w' -o dist/handler .
	cp host.json dist/
	cp -r functions/. dist/
	@if scripts/stack.sh status --name dev >/dev/null 2>&1; then \
	  issuer=$$( { . ./$(RUN_ENV) && echo "$$SPINE_AUTH_ISSUER"; } 2>/dev/null || echo http://127.0.0.1:$(PORT)/api/connect); \
	  $(GO) run ./scripts/localsettings -env $(DEV_ENV) -functions dist -keys $(CURDIR)/$(DEV_KEYS) \
	    -issuer "$$issuer" -audience $(DEV_AUDIENCE) -port $(FUNC_PORT) \
	    -metrics-addr 127.0.0.1:$$(scripts/stack.sh port --name dev func-metrics) -out dist/local.settings.json; \
	else \
	  echo "dist/local.settings.json (for func start) not written: no local stack runs; start make run in another terminal, then make package again"; \
	fi
	@echo "dist/ is ready: $$(ls dist | tr '\n' ' ')"

.PHONY: bench
bench: ## measure the hot paths beside the machine's ceilings (own stack, release build, ~10 min with the 60 s sustained event runs); ARGS='--profile read,register' or '--sustain-duration 30s'
	$(GO) run ./bench $(ARGS)

.PHONY: bench-smoke
bench-smoke: ## every bench case for 1 s (sustained event runs 2 s, one search step) on small seeds: proves the harness works (CI); no figure is asserted
	$(GO) run ./bench --smoke $(ARGS)

.PHONY: stack-down
stack-down: ## stop every local stack this checkout started
	@for d in .stack/*/; do [ -d "$$d" ] || continue; n=$$(basename "$$d"); \
	  scripts/stack.sh down --name "$$n" >/dev/null 2>&1 || echo "scripts/stack.sh down --name $$n failed" >&2; done

.PHONY: clean
clean: ## stop and delete every local stack of this checkout (data too, wherever it lives), build output
	@for d in .stack/*/; do [ -d "$$d" ] || continue; n=$$(basename "$$d"); \
	  scripts/stack.sh down --name "$$n" --purge >/dev/null 2>&1 || echo "scripts/stack.sh down --name $$n --purge failed" >&2; done
	rm -rf bin dist .stack
