// Command coffer is the single coffer binary: server, client, Kubernetes
// roles and governance tools. See `coffer help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/cofferhq/coffer/internal/cli"
)

// gcPercent is the GOGC default when the environment sets none. coffer's
// live heap is small (a few MB plus its caches) and a request allocates a
// few KB, so at Go's default of 100 the collector runs many times a second
// under load; at 400 a KV read benchmark gained ~25% throughput and a
// lower p99 for a few MB more heap. GOGC (and GOMEMLIMIT) still override.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
