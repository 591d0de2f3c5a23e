// Command coffer is the single coffer binary: server, client, Kubernetes
// roles and governance tools. See `coffer help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cofferhq/coffer/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
