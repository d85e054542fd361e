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

.PHONY: help run build test bench lint vet fmt-check fmt clean bin/bulkhead bin/zipdir \
	$(addprefix build-,$(FUNCTIONS))

help: ## List the targets.
	@echo 'usage: make <target>'
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_%-]*:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo 'functions: $(FUNCTIONS)'

run: bin/bulkhead ## Build and start the local platform (bulkhead dev); Ctrl-C stops it.
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

test: lint ## Vet, check formatting and run every test with the race detector.
ifeq ($(RACE),)
	@echo 'warning: cgo is off (no C compiler?), so the tests run WITHOUT the race detector' >&2
endif
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) ./...
	@# Infrastructure tests (infra/, CDK template assertions) are added here, after the Go tests.

bench: ## Run the benchmarks (no tests).
	$(GO) test -run '^$$' -bench . -benchmem ./...

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
