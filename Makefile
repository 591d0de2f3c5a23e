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

.PHONY: all build test test-unit test-compat lint bench fuzz clean

all: build

include k8s.mk

build:
	$(GO) build -trimpath -o bin/coffer ./cmd/coffer

test: test-unit test-compat

test-unit: k8s-bins
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
