// Package cli is coffer's command tree. Every client command reaches the
// server only through the api package. Flags may be written Vault-style
// with one dash (-format=json) or with two (--format=json).
//
// Exit codes: 0 success, 1 error, 2 usage (bad flags or arguments).
// Client commands take the address from -address, COFFER_ADDR or
// VAULT_ADDR, and the token from -token, COFFER_TOKEN, VAULT_TOKEN or the
// token file written by `coffer login`.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cofferhq/coffer/api"
)

// usageError marks errors that exit with status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries an explicit exit code (e.g. scan findings = 1) with
// an optional message.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// env is what every command shares: streams and global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	address    string
	token      string
	format     string
	caCert     string
	skipVerify bool
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := newRoot(e)
	root.SetArgs(normalizeArgs(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var xe exitError
	if errors.As(err, &xe) {
		if xe.msg != "" {
			fmt.Fprintf(stderr, "coffer: error: %s\n", xe.msg)
		}
		return xe.code
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") ||
		strings.HasPrefix(err.Error(), "unknown flag") || strings.HasPrefix(err.Error(), "unknown shorthand") {
		fmt.Fprintf(stderr, "coffer: error: %s\nRun 'coffer help' for usage.\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "coffer: error: %s\n", err)
	return 1
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "coffer",
		Short:         "coffer: a secrets manager for Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&e.address, "address", "", "server address (env COFFER_ADDR, VAULT_ADDR; default https://127.0.0.1:8200)")
	pf.StringVar(&e.token, "token", "", "token (env COFFER_TOKEN, VAULT_TOKEN, or the file written by 'coffer login')")
	pf.StringVar(&e.format, "format", "", "output format: table, json or yaml (default table on a terminal, json otherwise)")
	pf.StringVar(&e.caCert, "ca-cert", "", "PEM file of CAs to trust (env COFFER_CACERT, VAULT_CACERT)")
	pf.BoolVar(&e.skipVerify, "tls-skip-verify", false, "do not verify the server certificate (env COFFER_SKIP_VERIFY)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		switch e.format {
		case "", "table", "json", "yaml":
			return nil
		}
		return usagef("-format %q: want table, json or yaml", e.format)
	}
	root.AddCommand(
		newServerCmd(e),
		newStatusCmd(e),
		newOperatorCmd(e),
		newSecretsCmd(e),
	)
	for _, c := range extraCommands(e) {
		root.AddCommand(c)
	}
	return root
}

// normalizeArgs turns Vault-style single-dash long flags (-format=json)
// into the double-dash form cobra parses, for flags the target command
// actually defines. Everything after "--" is left alone.
func normalizeArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		cmd = root
	}
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && (cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil || root.PersistentFlags().Lookup(name) != nil) {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("expected %d argument(s) (%s), got %d", n, what, len(args))
		}
		return nil
	}
}

func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("expected at most %d argument(s) (%s), got %d", n, what, len(args))
		}
		return nil
	}
}

func (e *env) firstEnv(names ...string) string {
	for _, n := range names {
		if v := e.getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// tokenFile is where `coffer login` keeps the token.
func tokenFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".coffer-token")
}

// client builds an API client from flags and environment.
func (e *env) client() (*api.Client, error) {
	addr := e.address
	if addr == "" {
		addr = e.firstEnv("COFFER_ADDR", "VAULT_ADDR")
	}
	tok := e.token
	if tok == "" {
		tok = e.firstEnv("COFFER_TOKEN", "VAULT_TOKEN")
	}
	if tok == "" {
		if f := tokenFile(); f != "" {
			if b, err := os.ReadFile(f); err == nil {
				tok = strings.TrimSpace(string(b))
			}
		}
	}
	ca := e.caCert
	if ca == "" {
		ca = e.firstEnv("COFFER_CACERT", "VAULT_CACERT")
	}
	skip := e.skipVerify
	if v := e.firstEnv("COFFER_SKIP_VERIFY", "VAULT_SKIP_VERIFY"); v == "1" || v == "true" {
		skip = true
	}
	return api.NewClient(api.Config{Address: addr, Token: tok, CACert: ca, TLSSkipVerify: skip})
}

// outFormat is the effective output format.
func (e *env) outFormat() string {
	if e.format != "" {
		return e.format
	}
	if f, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "table"
	}
	return "json"
}

func (e *env) isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
