# make test    every test, with a throwaway PostgreSQL when LATCHKEY_TEST_POSTGRES is unset;
#              a test whose PostgreSQL, Chromium or Node is missing fails
# make test-short  the tests that need nothing but Go (the others skip)
# make verify  go mod tidy, gofmt, go vet, staticcheck, govulncheck
# make fuzz    every fuzz target for 10s on its committed corpus and beyond
# make bench   micro-benchmarks and the load tool

GO ?= go
# go.mod names the patched toolchain; let go switch to it (it comes from the
# module proxy) even where the installed Go defaults to GOTOOLCHAIN=local.
export GOTOOLCHAIN ?= auto
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
export LATCHKEY_SCREENSHOTS ?= $(CURDIR)/screenshots

.PHONY: test test-short verify lint fuzz bench build

# -buildvcs=true: `latchkey version` names the commit it was built from,
# whatever GOFLAGS says.
build:
	$(GO) build -buildvcs=true -o latchkey ./cmd/latchkey

# Every test: one that needs PostgreSQL, Chromium or Node fails when it is
# missing (and says what to install). test-short skips those instead.
test:
	@mkdir -p "$(LATCHKEY_SCREENSHOTS)"
	LATCHKEY_TEST_STRICT=1 ./scripts/with-postgres $(GO) test -race -count=1 -timeout 20m ./...
	@echo "screenshots of the browser tests: $(LATCHKEY_SCREENSHOTS)"

test-short:
	$(GO) test -count=1 ./...

verify: lint
	./scripts/govulncheck

lint:
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz:
	./scripts/fuzz

bench:
	./scripts/with-postgres $(GO) test -run '^$$' -bench . -benchmem ./...
	./scripts/with-postgres sh -c '$(GO) run ./cmd/latchkey-bench --postgres "$$LATCHKEY_TEST_POSTGRES"'
	@tmp=$$(mktemp -d) && $(GO) build -o "$$tmp/latchkey" ./cmd/latchkey && $(GO) run ./cmd/latchkey-bench -startup "$$tmp/latchkey"; s=$$?; rm -rf "$$tmp"; exit $$s
