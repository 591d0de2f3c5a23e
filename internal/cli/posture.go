package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/rbac"
	"github.com/cofferhq/coffer/internal/scan/rule"
)

// postureInput is where a posture command reads the cluster from: files
// (-f) or the API through a kubeconfig.
type postureInput struct {
	files       []string
	kubeconfig  string
	context     string
	namespaces  []string
	encryption  string
	apiManifest string
	pageSize    int64
}

func (in *postureInput) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVarP(&in.files, "file", "f", nil, "read objects from this file or directory (repeatable; - for standard input) instead of a cluster")
	f.StringVar(&in.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&in.context, "context", "", "kubeconfig context (default the current context)")
	f.StringVar(&in.encryption, "encryption-config", "", "the apiserver's EncryptionConfiguration file, to judge encryption at rest")
	f.StringVar(&in.apiManifest, "apiserver-manifest", "", "the kube-apiserver static pod manifest, to read its flags")
	f.Int64Var(&in.pageSize, "page-size", posture.DefaultPageSize, "objects per list call")
}

// load reads the snapshot; rbacOnly limits a live read to RBAC objects.
func (in *postureInput) load(cmd *cobra.Command, rbacOnly bool) (*posture.Snapshot, error) {
	ctx := cmd.Context()
	if len(in.files) > 0 {
		if in.kubeconfig != "" || in.context != "" {
			return nil, usagef("-f reads files; it cannot be combined with --kubeconfig or --context")
		}
		if len(in.namespaces) > 1 {
			return nil, usagef("with -f, -n names the one namespace of objects that have none")
		}
		ns := ""
		if len(in.namespaces) == 1 {
			ns = in.namespaces[0]
		}
		s, err := posture.LoadFiles(ctx, in.files, posture.FileOptions{
			Stdin: cmd.InOrStdin(), Namespace: ns, EncryptionConfig: in.encryption, APIServerManifest: in.apiManifest,
		})
		if err != nil {
			return nil, exitError{code: 2, msg: err.Error()}
		}
		return s, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if in.kubeconfig != "" {
		rules.ExplicitPath = in.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: in.context}).ClientConfig()
	if err != nil {
		return nil, exitError{code: 2, msg: fmt.Sprintf("posture: kubeconfig: %v (give -f FILE to read a dump instead)", err)}
	}
	cfg.QPS, cfg.Burst = 50, 100
	s, err := posture.LoadCluster(ctx, cfg, posture.ClusterOptions{
		Namespaces: in.namespaces, EncryptionConfig: in.encryption, APIServerManifest: in.apiManifest,
		PageSize: in.pageSize, RBACOnly: rbacOnly,
	})
	if err != nil {
		return nil, exitError{code: 2, msg: err.Error()}
	}
	return s, nil
}

// newPostureCmd is `coffer posture`. Exit codes as for scan: 0 clean, 1
// findings at or above --fail-on (or a level below --min-level), 2 error.
func newPostureCmd(e *env) *cobra.Command {
	var (
		in         postureInput
		format     string
		output     string
		failOn     string
		minLevel   int
		allow      []string
		noDefaults bool
		staleDays  int
		limit      int
	)
	cmd := &cobra.Command{
		Use:   "posture",
		Short: "Report who can read your Secrets, how, and how mature secrets management is",
		Long: `Read a cluster (through your kubeconfig, read-only list calls) or a dump of
manifests (-f: kubectl get -A -o yaml|json output, a directory, Helm output)
and report: who can reach the contents of which Secrets and by which path
(direct reads, pod and controller creation, exec, impersonation, bind and
escalate, token minting, nodes/proxy, CSR approval, webhook configurations,
and service accounts acting on each other's rights); the checks that fail,
with CIS Kubernetes Benchmark references, evidence and remediation; and a
maturity level from 0 (Exposed) to 4 (Ephemeral) with a 0-100 score and the
next three things to fix. Reads that are refused are reported, not fatal.

Exit status: 0 no finding at or above --fail-on, 1 findings (or a level
below --min-level), 2 error.`,
		Example: `  coffer posture
  coffer posture --context prod --format html -o posture.html
  kubectl get -A -o yaml pods,deployments,secrets,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings > dump.yaml
  coffer posture -f dump.yaml --encryption-config /etc/kubernetes/enc.yaml --fail-on high
  coffer posture who-can get secrets -n prod
  coffer posture paths serviceaccount:ci/deployer`,
		Args: maxArgs(0, "none; use -f for files"),
		// posture has its own --format (table, json, sarif, html); its
		// subcommands take the client formats.
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			if c.Name() == "posture" {
				return nil
			}
			switch e.format {
			case "", "table", "json", "yaml":
				return nil
			}
			return usagef("-format %q: want table or json", e.format)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(posture.Formats, format) {
				return usagef("--format %q: want %s", format, strings.Join(posture.Formats, ", "))
			}
			threshold, err := parseFailOn(failOn)
			if err != nil {
				return err
			}
			cfg := posture.Config{AllowReaders: slices.Clone(posture.DefaultAllowReaders), StaleAfter: time.Duration(staleDays) * 24 * time.Hour}
			if noDefaults {
				cfg.AllowReaders = []string{}
			}
			cfg.AllowReaders = append(cfg.AllowReaders, allow...)
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			snap, err := in.load(cmd, false)
			if err != nil {
				return err
			}
			rep, err := posture.Analyze(cmd.Context(), snap, cfg)
			if err != nil {
				return exitError{code: 2, msg: err.Error()}
			}
			w := cmd.OutOrStdout()
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return exitError{code: 2, msg: fmt.Sprintf("posture: output: %v", err)}
				}
				defer f.Close()
				w = f
			}
			if err := posture.Write(w, rep, format, posture.WriteOptions{Limit: limit}); err != nil {
				return exitError{code: 2, msg: fmt.Sprintf("posture: write report: %v", err)}
			}
			failing := 0
			if threshold != "" {
				failing = len(rep.Failing(threshold))
			}
			stderr := cmd.ErrOrStderr()
			if output != "" {
				fmt.Fprintf(stderr, "coffer: level %d (%s), score %d, %d finding(s); report in %s\n",
					rep.Maturity.Level, rep.Maturity.Name, rep.Maturity.Score, len(rep.Findings), output)
			}
			if rep.Maturity.Level < minLevel {
				return exitError{code: 1, msg: fmt.Sprintf("maturity level %d (%s) is below --min-level %d", rep.Maturity.Level, rep.Maturity.Name, minLevel)}
			}
			if failing > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	in.flags(cmd)
	f := cmd.Flags()
	f.StringArrayVarP(&in.namespaces, "namespace", "n", nil, "only these namespaces (repeatable); with -f, the namespace of objects that have none")
	f.StringVar(&format, "format", posture.FormatTable, "report format: "+strings.Join(posture.Formats, ", "))
	f.StringVarP(&output, "output", "o", "", "write the report to this file instead of standard output")
	f.StringVar(&failOn, "fail-on", "low", "exit 1 when a finding has this severity or higher: critical, high, medium, low, or none")
	f.IntVar(&minLevel, "min-level", 0, "exit 1 when the maturity level is below this (0-4)")
	f.StringArrayVar(&allow, "allow-reader", nil, "subject allowed to read Secrets, added to the defaults: user:NAME, group:NAME, serviceaccount:NS/NAME (wildcards allowed)")
	f.BoolVar(&noDefaults, "no-default-allow", false, "do not allow the control plane and kube-system to read Secrets by default")
	f.IntVar(&staleDays, "stale-days", int(posture.DefaultStaleAfter.Hours()/24), "days after which an unchanged static Secret is stale")
	f.IntVar(&limit, "limit", 20, "findings shown per check in the table")
	cmd.AddCommand(newWhoCanCmd(e), newPathsCmd(e), newPermissionsCmd(e), newChecksCmd(e))
	return cmd
}

func parseFailOn(s string) (rule.Severity, error) {
	switch sev := rule.Severity(strings.ToLower(s)); sev {
	case "none", "":
		return "", nil
	case rule.Critical, rule.High, rule.Medium, rule.Low, rule.Info:
		return sev, nil
	}
	return "", usagef("--fail-on %q: want critical, high, medium, low or none", s)
}

// postureFormat is table unless the root -format asks for json.
func (e *env) postureJSON() bool { return e.outFormat() == "json" || e.outFormat() == "yaml" }

func writeJSONValue(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newWhoCanCmd(e *env) *cobra.Command {
	var (
		in        postureInput
		namespace string
		name      string
	)
	cmd := &cobra.Command{
		Use:   "who-can VERB RESOURCE",
		Short: "List the subjects allowed an action, with the binding and role that grant it",
		Long: `List every user, group and service account that RBAC allows VERB on
RESOURCE (RESOURCE[.GROUP][/SUBRESOURCE], or a non-resource URL such as
/metrics), in namespace -n or cluster-wide, with the binding and role that
grant it. Aggregated ClusterRoles are resolved. Without --name, rules limited
to resourceNames are listed too, marked with the names.`,
		Example: `  coffer posture who-can get secrets -n prod
  coffer posture who-can create pods/exec -n prod
  coffer posture who-can impersonate serviceaccounts -n kube-system
  coffer posture who-can get /metrics -f dump.yaml`,
		Args: exactArgs(2, "VERB RESOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, warning, err := posture.ParseRequest(args[0], args[1], namespace, name)
			if err != nil {
				return usageError{err}
			}
			if warning != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "coffer: warning: %s\n", warning)
			}
			snap, err := in.load(cmd, true)
			if err != nil {
				return err
			}
			grants, problems := posture.WhoCan(snap, req, name == "")
			for _, g := range snap.Gaps {
				fmt.Fprintf(cmd.ErrOrStderr(), "coffer: warning: could not read %s: %s; the list may be incomplete\n", g.Resource, g.Reason)
			}
			w := cmd.OutOrStdout()
			if e.postureJSON() {
				if grants == nil {
					grants = []rbac.Grant{}
				}
				return writeJSONValue(w, map[string]any{"request": req, "grants": grants, "problems": problems})
			}
			if len(grants) == 0 {
				fmt.Fprintf(w, "nobody can %s\n", req)
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SUBJECT\tSCOPE\tBINDING\tROLE\tNAMES")
			for _, g := range grants {
				scope := "cluster"
				if g.Namespace != "" {
					scope = g.Namespace
				}
				role := g.Role.String()
				if g.From != "" {
					role += " (from " + g.From + ")"
				}
				names := "*"
				if len(g.Rule.ResourceNames) > 0 {
					names = strings.Join(g.Rule.ResourceNames, ",")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Subject, scope, g.Binding, role, names)
			}
			return tw.Flush()
		},
	}
	in.flags(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the request (empty: cluster-scoped or all namespaces)")
	cmd.Flags().StringVar(&name, "name", "", "object name of the request")
	return cmd
}

func newPathsCmd(e *env) *cobra.Command {
	var in postureInput
	cmd := &cobra.Command{
		Use:   "paths [SUBJECT]",
		Short: "Show each subject's paths to the contents of Secrets",
		Long: `Show, for every subject (or just SUBJECT: user:NAME, group:NAME,
serviceaccount:NS/NAME), the shortest path to each set of Secrets it can
reach, step by step with the reason and the bindings behind each step.
Paths a subject only has through a group are listed under the group.`,
		Args: maxArgs(1, "SUBJECT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var only *rbac.Subject
			if len(args) == 1 {
				s, err := rbac.ParseSubject(args[0])
				if err != nil {
					return usageError{err}
				}
				only = &s
			}
			snap, err := in.load(cmd, false)
			if err != nil {
				return err
			}
			acc := posture.Paths(snap, only)
			if e.postureJSON() {
				return writeJSONValue(cmd.OutOrStdout(), acc)
			}
			return posture.WritePaths(cmd.OutOrStdout(), acc)
		},
	}
	in.flags(cmd)
	cmd.Flags().StringArrayVarP(&in.namespaces, "namespace", "n", nil, "only these namespaces (repeatable)")
	return cmd
}

func newPermissionsCmd(e *env) *cobra.Command {
	var in postureInput
	cmd := &cobra.Command{
		Use:   "permissions SUBJECT",
		Short: "List a subject's effective RBAC rules and where each comes from",
		Long: `List every RBAC rule that applies to SUBJECT (user:NAME, group:NAME or
serviceaccount:NS/NAME), including those of its groups (system:authenticated;
for service accounts system:serviceaccounts and system:serviceaccounts:NS),
with the binding, the role and, for aggregated roles, the source role.`,
		Args: exactArgs(1, "SUBJECT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sub, err := rbac.ParseSubject(args[0])
			if err != nil {
				return usageError{err}
			}
			snap, err := in.load(cmd, true)
			if err != nil {
				return err
			}
			grants := posture.Permissions(snap, sub)
			w := cmd.OutOrStdout()
			if e.postureJSON() {
				if grants == nil {
					grants = []rbac.Grant{}
				}
				return writeJSONValue(w, map[string]any{"subject": sub, "identity": sub.Identity(), "rules": grants})
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCOPE\tRULE\tVIA")
			for _, g := range grants {
				scope := "cluster"
				if g.Namespace != "" {
					scope = g.Namespace
				}
				via := g.Path()
				if g.Subject.Key() != sub.Key() {
					via += " (as " + g.Subject.String() + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", scope, ruleText(g), via)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%d rule(s) for %s\n", len(grants), sub)
			return err
		},
	}
	in.flags(cmd)
	return cmd
}

func ruleText(g rbac.Grant) string {
	r := g.Rule
	if len(r.NonResourceURLs) > 0 {
		return strings.Join(r.Verbs, ",") + " " + strings.Join(r.NonResourceURLs, ",")
	}
	s := strings.Join(r.Verbs, ",") + " " + strings.Join(r.Resources, ",")
	if gs := strings.Join(r.APIGroups, ","); gs != "" {
		s += " (" + gs + ")"
	}
	if len(r.ResourceNames) > 0 {
		s += " named " + strings.Join(r.ResourceNames, ",")
	}
	return s
}

func newChecksCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "checks",
		Short: "List the checks, their severity, CIS reference and maturity level",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos := posture.Checks()
			w := cmd.OutOrStdout()
			if e.postureJSON() {
				return writeJSONValue(w, infos)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CHECK\tSEVERITY\tCIS\tLEVEL\tASPECT\tTITLE")
			for _, c := range infos {
				cis, lvl := c.CIS, "score"
				if cis == "" {
					cis = "-"
				}
				if c.Level > 0 {
					lvl = fmt.Sprintf("%d %s", c.Level, posture.LevelNames[c.Level])
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Severity, cis, lvl, c.Aspect, c.Title)
			}
			return tw.Flush()
		},
	}
}
