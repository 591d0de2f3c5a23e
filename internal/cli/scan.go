package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cofferhq/coffer/internal/scan"
	"github.com/cofferhq/coffer/internal/scan/rule"
	"github.com/cofferhq/coffer/internal/server"
)

// newScanCmd is `coffer scan`: the leak scanner. Exit codes: 0 clean, 1
// secrets found, 2 error.
func newScanCmd() *cobra.Command {
	var (
		o          scan.Options
		output     string
		noProgress bool
		quiet      bool
	)
	cmd := &cobra.Command{
		Use:   "scan [PATH...]",
		Short: "Find credentials in files, git history and Kubernetes manifests",
		Long: `Scan files and directories (default "."), standard input ("-"), a git
repository's history (--git), staged changes (--staged, for pre-commit) or a
commit range (--since REV) for credentials. Kubernetes Secrets in YAML or JSON
are decoded and their values checked.

Exit status: 0 no secrets, 1 secrets found, 2 error.`,
		Example: `  coffer scan .
  coffer scan --git --format sarif -o coffer.sarif
  coffer scan --staged
  kubectl get secrets -A -o json | coffer scan -
  coffer scan install-hook`,
		// The scan command has its own --format (table, json, sarif); the
		// root's check of the client formats does not apply.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Paths = args
			o.Version = server.Version
			o.Stdin = cmd.InOrStdin()
			o.Output = cmd.OutOrStdout()
			stderr := cmd.ErrOrStderr()
			if !quiet {
				o.Warnings = stderr
			}
			if f, ok := stderr.(*os.File); ok && !noProgress && !quiet && term.IsTerminal(int(f.Fd())) {
				o.Progress = stderr
			}
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return exitError{code: 2, msg: fmt.Sprintf("scan: output: %v", err)}
				}
				defer f.Close()
				o.Output = f
			}
			res, err := scan.Run(cmd.Context(), o)
			switch {
			case errors.Is(err, scan.ErrFindings):
				if output != "" && res != nil {
					fmt.Fprintf(stderr, "coffer: %d secret(s) found, report in %s\n", len(res.Findings), output)
				}
				return exitError{code: 1}
			case errors.Is(err, scan.ErrUsage):
				return usageError{err}
			case err != nil:
				return exitError{code: 2, msg: err.Error()}
			}
			if o.WriteBaseline != "" {
				fmt.Fprintf(stderr, "coffer: baseline with %d finding(s) written to %s\n", len(res.Findings), o.WriteBaseline)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Git, "git", false, "scan the full history of --repo (each unique blob once)")
	f.BoolVar(&o.Staged, "staged", false, "scan the lines staged for commit in --repo (pre-commit)")
	f.StringVar(&o.Since, "since", "", "scan commits in REV..HEAD of --repo (or a given A..B range)")
	f.StringVar(&o.Repo, "repo", ".", "git repository for --git, --staged and --since")
	f.BoolVar(&o.Gitignore, "gitignore", false, "skip files ignored by .gitignore")
	f.BoolVar(&o.NoSkip, "no-skip", false, "also scan lock files and binary formats named by extension")
	f.BoolVar(&o.NoManifests, "no-manifests", false, "do not decode Kubernetes Secrets in YAML and JSON")
	f.StringVar(&o.RulesFile, "rules", "", "rule file that extends or overrides the default rules by id")
	f.StringVar(&o.ConfigFile, "config", "", "allowlist config file (default "+scan.DefaultConfigFile+" if present)")
	f.StringVar(&o.Baseline, "baseline", "", "ignore findings listed in this baseline file")
	f.StringVar(&o.WriteBaseline, "write-baseline", "", "write the findings to this baseline file and exit 0")
	f.StringVarP(&o.Format, "format", "f", "table", "report format: table, json or sarif")
	f.StringVarP(&output, "output", "o", "", "write the report to this file instead of standard output")
	f.BoolVar(&o.ShowSecrets, "show-secrets", false, "print secrets unredacted")
	f.IntVarP(&o.Workers, "jobs", "j", runtime.NumCPU(), "scanning workers")
	f.BoolVar(&noProgress, "no-progress", false, "no progress bar")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar and no warnings about skipped files")
	cmd.AddCommand(newScanInstallHookCmd(), newScanRulesCmd())
	return cmd
}

func newScanInstallHookCmd() *cobra.Command {
	var (
		repo, binary string
		force        bool
	)
	cmd := &cobra.Command{
		Use:   "install-hook",
		Short: "Write a git pre-commit hook that runs `coffer scan --staged`",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := scan.InstallHook(cmd.Context(), repo, binary, force)
			if err != nil {
				return exitError{code: 2, msg: err.Error()}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pre-commit hook written to %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", ".", "git repository")
	cmd.Flags().StringVar(&binary, "binary", "coffer", "coffer command the hook runs (COFFER_BIN overrides at commit time)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing pre-commit hook")
	return cmd
}

func newScanRulesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rules",
		Short: "Print the default rule file (a starting point for --rules)",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(rule.DefaultBytes())
			return err
		},
	}
}
