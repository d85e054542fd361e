# Bulkhead's front door. `make run` starts the local platform, `make test` runs
# every check. Both need nothing but Go: Go fetches the modules itself.

GO    ?= go
# gofmt ships with Go but is not always on PATH; take the one next to the go command.
GOFMT ?= $(shell $(GO) env GOROOT)/bin/gofmt

# One Lambda function per directory of functions/ that has a main.go.
FUNCTIONS := $(sort $(patsubst functions/%/main.go,%,$(wildcard functions/*/main.go)))

# Lambda binaries: the provided.al2023 runtime on Graviton runs dist/<name>/bootstrap.
# lambda.norpc drops the Go 1.x RPC shim the custom runtime never uses.
# -buildvcs=false: no VCS stamp, so an unchanged function zips to the same
# bytes on every commit (no needless redeploy) and a root-owned CI checkout
# cannot trip git's safe.directory check.
# pkg/platform/lambda_test.go cross-compiles with the same flags (keep them in step).
LAMBDA_ENV   := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -buildvcs=false -ldflags='-s -w'

# The race detector needs cgo, and Go turns cgo off when it finds no C
# compiler; on such a machine the tests run without -race (with a warning).
RACE := $(if $(filter 1,$(shell $(GO) env CGO_ENABLED)),-race,)
TEST_TIMEOUT ?= 20m

# The Go files gofmt checks: everything but VCS data, dependencies, CDK output and test data.
GO_FILES := find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*' -not -path './cdk.out/*' -not -path '*/testdata/*'

.DEFAULT_GOAL := help

.PHONY: help run build test browser fuzz bench cost lint vet fmt-check fmt clean bin/bulkhead bin/zipdir \
	$(addprefix build-,$(FUNCTIONS))

help: ## List the targets.
	@echo 'usage: make <target>'
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_%-]*:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo 'functions: $(FUNCTIONS)'

run: bin/bulkhead ## Build and start the local platform (bulkhead dev); its banner prints the portal's URL. Ctrl-C stops it.
	exec ./bin/bulkhead dev

build: $(addprefix build-,$(FUNCTIONS)) bin/bulkhead ## Package every function to dist/<name>.zip (linux/arm64) and build bin/bulkhead.

# bin/ and dist/ targets are phony on purpose: the Go build cache decides what
# is stale. (A static pattern rule: make skips implicit rules for phony targets.)
$(addprefix build-,$(FUNCTIONS)): build-%: bin/zipdir
	@mkdir -p dist/$*
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o dist/$*/bootstrap ./functions/$*
	./bin/zipdir -o dist/$*.zip dist/$*/bootstrap

bin/bulkhead:
	$(GO) build -buildvcs=false -o $@ ./cmd/bulkhead

# The zip tool is Go too (no dependency on the zip package): bootstrap at the
# archive's root, executable, with a fixed timestamp so the zip is reproducible.
bin/zipdir:
	@$(GO) build -buildvcs=false -o $@ ./scripts/zipdir

# The portal's browser tests (pkg/portal) drive Debian's headless Chromium.
# As root, a missing /usr/bin/chromium is installed with apt-get; otherwise a
# missing browser stops here with what to do (the tests never skip silently).
CHROMIUM ?= $(or $(BULKHEAD_CHROMIUM),/usr/bin/chromium)

browser: ## Install Chromium for the portal's browser tests when it is missing (apt-get, as root).
	@if [ -x "$(CHROMIUM)" ]; then echo "browser: $(CHROMIUM) is installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo 'browser: installing chromium for the portal tests (apt-get)'; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else \
		echo "error: $(CHROMIUM) not found. The portal's browser tests (pkg/portal) need Chromium:" >&2; \
		echo '       as root, run `make browser` (apt-get install -y --no-install-recommends chromium),' >&2; \
		echo '       or set BULKHEAD_CHROMIUM to a Chromium or Chrome binary.' >&2; exit 1; \
	fi

test: lint browser ## Vet, check formatting and run every test with the race detector.
ifeq ($(RACE),)
	@echo 'warning: cgo is off (no C compiler?), so the tests run WITHOUT the race detector' >&2
endif
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) ./...
	@# The embedded DynamoDB engine is a module of its own (third_party/minidyn), which ./... leaves
	@# out. Its SDK tests load the default AWS config, which refuses a CA bundle from the environment.
	cd third_party/minidyn && AWS_CA_BUNDLE= $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./core/... ./server/... ./interpreter/...
	$(MAKE) --no-print-directory fuzz
	@# Infrastructure tests (infra/: CDK template assertions, cdk-nag), on their own line after the Go
	@# tests; they need node (test-infra checks). Fresh clone, 2 cores: about 16 s with a warm build
	@# cache, about 4 min with an empty one (compiling the CDK's Go bindings).
	$(MAKE) --no-print-directory test-infra

# Fuzz targets: every `func FuzzX` in a *_fuzz_test.go file, found anew on
# each run, so a new target needs no edit here. Each fuzzes for FUZZTIME, one
# after another (Go fuzzes one target at a time); their committed corpora
# (testdata/fuzz/) also run in plain `go test`. Each package's test binary is
# built once, with the fuzzing instrumentation, and run once per target: the
# same as `go test -run '^$$' -fuzz '^FuzzX$$' -fuzztime $(FUZZTIME) ./pkg/x`
# without linking it again for every target (seconds each: most of the time
# the fuzz step took before). It keeps the
# inputs it finds interesting where `go test -fuzz` keeps them
# (GOCACHE/fuzz/<import path>). An input that fails is written to the
# package's testdata/fuzz/FuzzX/ and fails the run: commit it with the fix,
# and it is a regression test from then on.
FUZZTIME ?= 3s
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when a duration -fuzztime ends while a worker on a loaded machine
# is mid-call (golang/go#75804, fixed in Go 1.27). That failure writes no
# failing input and names no test line; it is reported and passed over. A real
# finding always writes its input (and a panic or t.Error names its line), and
# fails the run. A count (FUZZTIME=10000x) has no deadline to race, but the
# targets that go through HTTP to the embedded servers run a few hundred
# inputs a second, so a count that suits every target takes ten minutes.
# Each input that finds new code is shrunk before fuzzing goes on; the default
# (60 s) could spend a short run on that alone. A failing input is written
# whether or not it is fully shrunk.
FUZZMINIMIZETIME ?= 1s
FUZZ_FIND := grep -r -o --include='*_fuzz_test.go' --exclude-dir=.git --exclude-dir=node_modules --exclude-dir=cdk.out --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]*' .

fuzz: ## Run every fuzz target for FUZZTIME each (default 3s).
	@targets=$$($(FUZZ_FIND) | sed -E 's|^\./(.*)/[^/]*:func (Fuzz.*)$$|\1:\2|' | sort); \
	if [ -z "$$targets" ]; then echo 'fuzz: no fuzz targets found' >&2; exit 1; fi; \
	cache="$$($(GO) env GOCACHE)/fuzz"; start=$$(date +%s); n=0; \
	for pkg in $$(printf '%s\n' $$targets | cut -d: -f1 | uniq); do \
		names=$$(printf '%s\n' $$targets | grep "^$$pkg:" | cut -d: -f2); \
		bin="$(CURDIR)/bin/fuzz/$$(echo "$$pkg" | tr / -).test"; \
		first=$$(echo "$$names" | head -n 1); \
		$(GO) test -c -fuzz "^$$first\$$" -o "$$bin" "./$$pkg" || exit 1; \
		importpath=$$($(GO) list "./$$pkg") || exit 1; \
		for name in $$names; do \
			n=$$((n + 1)); echo "fuzz: $$name (./$$pkg) for $(FUZZTIME)"; \
			log="$(CURDIR)/bin/fuzz/$$name.log"; \
			if ! (cd "$$pkg" && "$$bin" -test.run '^$$' -test.fuzz "^$$name\$$" -test.fuzztime $(FUZZTIME) -test.fuzzminimizetime $(FUZZMINIMIZETIME) \
				-test.fuzzcachedir "$$cache/$$importpath" -test.timeout 10m) >"$$log" 2>&1; then \
				cat "$$log"; \
				if grep -q 'context deadline exceeded' "$$log" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$$log"; then \
					echo "fuzz: $$name: the fuzz coordinator's end-of-fuzztime race (golang/go#75804), no failing input; not a finding"; \
				else exit 1; fi; \
			else tail -n 3 "$$log"; fi; \
		done; \
	done; \
	echo "fuzz: $$n targets in $$(( $$(date +%s) - start ))s"

bench: ## Run the benchmarks (no tests).
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The cost model (scripts/cost): the local platform behind request-counting
# proxies, a scripted mix, and each kind of execution priced at list prices.
cost: ## Print store requests, read/write units and $ per million executions (-json: go run ./scripts/cost -json).
	$(GO) run ./scripts/cost

lint: vet fmt-check ## go vet and the gofmt check.

vet:
	$(GO) vet ./...

# gofmt -l lists files whose formatting differs; any listed file fails the check.
fmt-check:
	@files=$$($(GO_FILES)); \
	out=$$($(GOFMT) -l $$files); status=$$?; \
	if [ -n "$$out" ]; then echo 'gofmt: these files are not formatted (make fmt fixes them):'; echo "$$out"; exit 1; fi; \
	if [ $$status -ne 0 ]; then echo 'gofmt: could not parse the files above' >&2; exit 1; fi; \
	echo 'gofmt: all files formatted'

fmt: ## Format every Go file in place.
	$(GOFMT) -w $$($(GO_FILES))

clean: ## Remove build output (bin/, dist/); local state in .bulkhead/ is kept.
	rm -rf bin dist

# --- Infrastructure: the AWS CDK app in infra/ (Go) --------------------------
# jsii runs the CDK's JavaScript library in Node, so these targets need `node`
# on PATH (Node >= 20). Node 20 works but is past its end of life, and jsii
# says so in a banner on every run: INFRA_ENV acknowledges that for Node 20
# only (a newer Node needs no acknowledgment, an older one stays loud).
# Synthesis and the tests need no npm package, no AWS account and no
# credentials: the stacks are environment-agnostic unless the cdk CLI pins
# them (CDK_DEFAULT_ACCOUNT, CDK_DEFAULT_REGION).
CDK_OUT            ?= cdk.out
# Comma-separated silo tenants (one BulkheadTenant-<id> stack each); with none,
# synth adds the example silo stack BulkheadTenant-example.
SILO_TENANTS       ?=
INFRA_TEST_TIMEOUT ?= 15m
INFRA_ENV          := JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

.PHONY: synth deploy test-infra node-check

node-check:
	@node --version >/dev/null 2>&1 || { \
		echo 'error: node not found on PATH. The CDK app (infra/) runs the AWS CDK through jsii, which needs Node.js >= 20:' >&2; \
		echo '       install it (e.g. apt-get install nodejs, or https://nodejs.org) and retry.' >&2; exit 1; }

# The cdk CLI `make deploy` runs, pinned: a CLI release reads the cloud
# assembly of the aws-cdk-lib in go.mod (github.com/aws/aws-cdk-go/awscdk/v2,
# 2.276.0) and was current with it. Raise both together. npx fetches it from
# npm once and keeps it in its cache (a few seconds).
CDK_CLI_VERSION    := 2.1148.1
CDK                := npx --yes aws-cdk@$(CDK_CLI_VERSION)
# The CLI sends no telemetry (and, with --no-notices, fetches no notices).
CDK_CLI_ENV        := CDK_DISABLE_CLI_TELEMETRY=true

# The app runs directly (go run), not through the cdk CLI: it reads cdk.json's
# context itself, CDK_CONTEXT_JSON adds to it, and nag=true fails the synthesis
# on any unsuppressed cdk-nag AwsSolutions finding. The app also sets the
# context the CLI would add (stacks.CLIContext), so the templates are the ones
# `cdk synth` writes; infra/cli_test.go runs this command and the CLI and
# compares them (keep it in step).
synth: build node-check ## Synthesize the CDK app to cdk.out/ (pool + silo stacks, cdk-nag checked; offline).
	rm -rf $(CDK_OUT)
	$(INFRA_ENV) CDK_OUTDIR=$(CDK_OUT) CDK_CONTEXT_JSON='{"siloTenants":"$(SILO_TENANTS)","nag":"true"}' $(GO) run ./infra
	@ls $(CDK_OUT)/*.template.json

# Never run by the tests. The example silo is not deployed; list real silo
# tenants with SILO_TENANTS=acme,globex.
deploy: build node-check ## Deploy every stack with the AWS CDK CLI (pinned CDK_CLI_VERSION; needs AWS credentials).
	$(INFRA_ENV) $(CDK_CLI_ENV) $(CDK) deploy --all --no-notices -c exampleSilo=false -c siloTenants=$(SILO_TENANTS) -c nag=true

# The infra tests carry the "infra" build tag, so `go test ./...` skips them.
# They include infra/cli_test.go, which synthesizes the app as `make synth`
# does and through the pinned cdk CLI (CDK_CLI_VERSION, from this file) and
# compares the templates: it needs npx, and adds about a minute on 2 cores
# (two more syntheses; make test-infra went from about 1 to about 2 minutes).
test-infra: node-check ## CDK template assertions and cdk-nag checks of the stacks (infra/).
	$(GO) vet -tags infra ./infra/...
	$(INFRA_ENV) $(GO) test -tags infra -count=1 -timeout $(INFRA_TEST_TIMEOUT) ./infra/...
