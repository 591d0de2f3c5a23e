package k8stest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// Main is a test package's TestMain: it starts one control plane, stores
// it in *cluster, runs the tests, stops the control plane and returns the
// exit code for os.Exit:
//
//	var cluster *k8stest.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, k8stest.Options{}, &cluster)) }
//
// Without the binaries the package's tests do not run: under CI=true that
// is a failure (exit 1), elsewhere a notice on stderr and exit 0. An
// interrupt or SIGTERM stops the control plane before the binary exits.
func Main(m *testing.M, opts Options, cluster **Cluster) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	begin := time.Now()
	c, err := Start(ctx, opts)
	if errors.Is(err, ErrNoBinaries) {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL: %v\nCI=true: the Kubernetes tests must run; build the binaries with `make k8s-bins`\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIP: %v\nthis package's tests did not run\n", err)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer c.Stop()
	fmt.Fprintf(os.Stderr, "k8stest: control plane ready in %v at %s (dir %s)\n",
		time.Since(begin).Round(time.Millisecond), c.Host, c.Dir)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "k8stest: %v: stopping the control plane\n", s)
			c.Stop()
			os.Exit(1)
		case <-ctx.Done():
		}
	}()

	*cluster = c
	return m.Run()
}
