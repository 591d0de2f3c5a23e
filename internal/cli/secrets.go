package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/api"
)

func newSecretsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "secrets", Short: "Enable, disable and list secrets engines"}
	cmd.AddCommand(newMountEnableCmd(e, "secrets"), newMountDisableCmd(e, "secrets"), newMountListCmd(e, "secrets"))
	return cmd
}

// newMountEnableCmd serves `secrets enable` and `auth enable`.
func newMountEnableCmd(e *env, kind string) *cobra.Command {
	var path, desc, version, defTTL, maxTTL string
	cmd := &cobra.Command{
		Use:   "enable TYPE",
		Short: "Enable a " + strings.TrimSuffix(kind, "s") + " backend of TYPE",
		Args:  exactArgs(1, "TYPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			typ := args[0]
			if path == "" {
				path = typ
			}
			in := api.MountInput{Type: typ, Description: desc, Options: map[string]string{}}
			if version != "" {
				in.Options["version"] = version
			}
			if defTTL != "" || maxTTL != "" {
				in.Config = map[string]any{}
				if defTTL != "" {
					in.Config["default_lease_ttl"] = defTTL
				}
				if maxTTL != "" {
					in.Config["max_lease_ttl"] = maxTTL
				}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			path = strings.Trim(path, "/")
			if kind == "auth" {
				err = c.Sys().EnableAuth(cmd.Context(), path, in)
			} else {
				err = c.Sys().Mount(cmd.Context(), path, in)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Enabled %s at: %s/\n", typ, path)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&path, "path", "", "mount path (default: the type name)")
	fl.StringVar(&desc, "description", "", "human-readable description")
	fl.StringVar(&defTTL, "default-lease-ttl", "", "default lease TTL, e.g. 1h")
	fl.StringVar(&maxTTL, "max-lease-ttl", "", "maximum lease TTL, e.g. 24h")
	if kind == "secrets" {
		fl.StringVar(&version, "version", "", "engine version (kv: 2)")
	}
	return cmd
}

func newMountDisableCmd(e *env, kind string) *cobra.Command {
	return &cobra.Command{
		Use:   "disable PATH",
		Short: "Disable the backend at PATH and delete its data",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			path := strings.Trim(args[0], "/")
			if kind == "auth" {
				err = c.Sys().DisableAuth(cmd.Context(), path)
			} else {
				err = c.Sys().Unmount(cmd.Context(), path)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Disabled the backend (if it existed) at: %s/\n", path)
			return nil
		},
	}
}

func newMountListCmd(e *env, kind string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List enabled backends",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var m map[string]any
			if kind == "auth" {
				m, err = c.Sys().ListAuth(cmd.Context())
			} else {
				m, err = c.Sys().ListMounts(cmd.Context())
			}
			if err != nil {
				return err
			}
			if e.outFormat() != "table" {
				return e.print(m, nil)
			}
			return writeMounts(e.stdout, m)
		},
	}
}

func writeMounts(w io.Writer, m map[string]any) error {
	paths := make([]string, 0, len(m))
	for p := range m {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tw := tabwriter.NewWriter(w, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, "Path\tType\tAccessor\tDescription")
	fmt.Fprintln(tw, "----\t----\t--------\t-----------")
	for _, p := range paths {
		row, _ := m[p].(map[string]any)
		fmt.Fprintf(tw, "%s\t%v\t%v\t%v\n", p, row["type"], row["accessor"], row["description"])
	}
	return tw.Flush()
}
