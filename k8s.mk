# k8s.mk — the real Kubernetes control plane used by internal/k8stest.
#
# Included from the Makefile (`include k8s.mk`); also usable on its own:
#   make -f k8s.mk k8s-bins
#
#   make k8s-bins    builds kube-apiserver, etcd and etcdctl into $(K8S_BIN)
#                    once; later runs only check `--version` and return
#   make k8s-clean   removes $(K8S_CACHE) (binaries and wrapper modules)
#
# K8S_BIN is exported, so every recipe of the including Makefile (go test in
# particular) passes it to internal/k8stest. Point K8S_CACHE elsewhere to keep
# the binaries somewhere else, e.g. a CI cache directory. To build them before
# the tests, make the test target depend on k8s-bins:
#   test-unit: k8s-bins

K8S_VERSION  ?= 1.34.4
ETCD_VERSION ?= 3.6.4
K8S_CACHE    ?= $(HOME)/.cache/coffer/k8s/v$(K8S_VERSION)
# Always derived from K8S_CACHE (an inherited K8S_BIN is ignored), so the
# tests run exactly what k8s-bins built.
K8S_BIN      := $(K8S_CACHE)/bin

export K8S_BIN

# The directory of this file, so the script is found from any including Makefile.
K8S_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: k8s-bins k8s-clean

# The script is idempotent and cheap when the binaries exist, so it runs every
# time rather than trusting file timestamps: a binary that exists but does not
# run, or reports another version, is rebuilt.
k8s-bins:
	@K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) GO=$(or $(GO),go) \
	  $(K8S_MK_DIR)/hack/build-k8s.sh "$(K8S_CACHE)"

k8s-clean:
	rm -rf $(K8S_CACHE)
