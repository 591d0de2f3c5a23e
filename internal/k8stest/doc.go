// Package k8stest runs a real Kubernetes control plane, etcd and
// kube-apiserver, for tests. Nothing here is compiled into coffer itself.
//
// # Binaries
//
// The binaries are built once, from the Go module proxy, by `make k8s-bins`
// (k8s.mk, hack/build-k8s.sh) into $HOME/.cache/coffer/k8s/v1.34.4/bin.
// The environment variable K8S_BIN names another directory. `make test`
// exports K8S_BIN.
//
// # One control plane per test package
//
// Starting takes seconds (tens of seconds on a loaded machine) and the
// apiserver needs about 300 MB, so a package starts one from TestMain and
// its tests share it, each in its own namespace:
//
//	var cluster *k8stest.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, k8stest.Options{}, &cluster)) }
//
//	func TestSomething(t *testing.T) {
//		ns := "something"
//		if err := cluster.CreateNamespace(t.Context(), ns); err != nil {
//			t.Fatal(err)
//		}
//		...
//	}
//
// Nothing runs kube-controller-manager, a scheduler or a kubelet: Pods
// stay Pending, namespaces are never emptied on deletion and there is no
// garbage collection. Start creates what the controller-manager would
// have created at start-up (the default service accounts and the
// kube-root-ca.crt ConfigMap in the system namespaces) and CreateNamespace
// does the same for a new namespace.
//
// # What Start configures
//
// PKI is generated with crypto/x509 into a temporary directory (Dir): a
// CA, the apiserver's serving certificate for 127.0.0.1, an admin client
// certificate in group system:masters (AdminConfig, Client), a static
// admin bearer token (AdminToken) and an RSA key pair for
// service-account tokens. etcd and kube-apiserver listen on free loopback
// ports; the service-account issuer is the apiserver's URL, so
// /.well-known/openid-configuration and /openid/v1/jwks are served, and
// the IssuerDiscoveryBinding makes them readable anonymously. Authorization
// is Node,RBAC. With Options.KMSSocket, Secrets are envelope-encrypted by
// a KMS v2 plugin on that socket (EtcdGet shows the stored bytes).
//
// Start waits for /readyz up to Options.ReadyTimeout (DefaultReadyTimeout)
// and, when that fails, returns the apiserver's verbose readiness report
// and the last lines of both logs. Processes run in their own process
// groups; Stop ends them, and on Linux the kernel kills them if the test
// binary dies first. K8STEST_KEEP=1 keeps Dir (logs, kubeconfig) after
// Stop.
package k8stest
