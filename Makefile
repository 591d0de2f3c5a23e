# coffer — build, test, lint.
#
#   make build   builds bin/coffer
#   make test    runs every test: unit, integration and compatibility
#   make lint    gofmt + go vet on both modules
#   make bench   runs the Go benchmarks once
#   make fuzz    runs each fuzz target for FUZZTIME (default 30s)
#   make k8s-bins builds kube-apiserver and etcd for the Kubernetes tests
#                (once, into ~/.cache/coffer/k8s; see k8s.mk)

GO       ?= go
FUZZTIME ?= 30s
PKGS     := ./...

.PHONY: all build test test-unit test-compat lint bench fuzz clean sarif-tool

all: build

include k8s.mk

# Microsoft's SARIF validator, fetched from npm once; the scan tests run it.
SARIF_MULTITOOL_VERSION ?= 5.7.0
SARIF_CACHE ?= $(HOME)/.cache/coffer/sarif-multitool/v$(SARIF_MULTITOOL_VERSION)
export SARIF_MULTITOOL := $(SARIF_CACHE)/package/Sarif.Multitool

sarif-tool:
	@SARIF_MULTITOOL_VERSION=$(SARIF_MULTITOOL_VERSION) hack/sarif-tool.sh "$(SARIF_CACHE)" >/dev/null

build:
	$(GO) build -trimpath -o bin/coffer ./cmd/coffer

test: test-unit test-compat

test-unit: k8s-bins sarif-tool
	$(GO) test -count=1 -timeout 20m $(PKGS)

test-compat: k8s-bins
	cd compat && $(GO) test -count=1 -timeout 15m ./...

lint:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd compat && $(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1s $(PKGS)

fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
