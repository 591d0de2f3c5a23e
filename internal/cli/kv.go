package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/api"
)

func newKVCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write versioned secrets in a KV v2 engine",
		Long: `Read and write versioned secrets in a KV v2 engine.

Paths name the mount and the key: secret/app/db is key app/db in the engine at secret/.
Data is given as key=value pairs, key=@file to read a value from a file, or - to read a
JSON object from standard input.`,
	}
	cmd.AddCommand(newKVPutCmd(e, false), newKVPutCmd(e, true), newKVGetCmd(e), newKVVersionsCmd(e, "delete"),
		newKVVersionsCmd(e, "undelete"), newKVVersionsCmd(e, "destroy"), newKVListCmd(e), newKVMetadataCmd(e))
	return cmd
}

// kvPath splits "secret/app/db" into the mount ("secret/") and key.
func kvPath(ctx context.Context, c *api.Client, p, mount string) (string, string, error) {
	p = strings.Trim(p, "/")
	if mount != "" {
		return strings.Trim(mount, "/") + "/", p, nil
	}
	s, err := c.Logical().Read(ctx, "sys/internal/ui/mounts/"+p, nil)
	if err != nil {
		return "", "", fmt.Errorf("find the mount of %q: %w", p, err)
	}
	if s == nil {
		return "", "", fmt.Errorf("no mount found for %q", p)
	}
	m, _ := s.Data["path"].(string)
	if typ, _ := s.Data["type"].(string); typ != "kv" {
		return "", "", fmt.Errorf("%q is in a %s mount, not kv", p, typ)
	}
	return m, strings.TrimPrefix(p+"/", m), nil
}

// kvTarget returns a client and the mount and key of path p (kvPath).
func (e *env) kvTarget(ctx context.Context, p, mount string) (*api.Client, string, string, error) {
	c, err := e.client()
	if err != nil {
		return nil, "", "", err
	}
	m, key, err := kvPath(ctx, c, p, mount)
	return c, m, key, err
}

func kvAPIPath(mount, kind, key string) string {
	return mount + kind + "/" + strings.Trim(key, "/")
}

// parseKV turns k=v, k=@file and "-" arguments into a map.
func parseKV(stdin io.Reader, args []string) (map[string]any, error) {
	out := map[string]any{}
	for _, a := range args {
		if a == "-" {
			var m map[string]any
			dec := json.NewDecoder(stdin)
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				return nil, fmt.Errorf("read JSON object from standard input: %w", err)
			}
			for k, v := range m {
				out[k] = v
			}
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usagef("argument %q is not key=value, key=@file or -", a)
		}
		if strings.HasPrefix(v, "@") {
			b, err := os.ReadFile(v[1:])
			if err != nil {
				return nil, fmt.Errorf("read value of %q: %w", k, err)
			}
			v = string(b)
		}
		out[k] = v
	}
	return out, nil
}

func newKVPutCmd(e *env, patch bool) *cobra.Command {
	var mount string
	cas := -1
	use, short := "put PATH [K=V...]", "Write a new version of a secret"
	if patch {
		use, short = "patch PATH [K=V...]", "Merge keys into the latest version, as a new version"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("expected PATH and at least one K=V (or -)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			data, err := parseKV(e.stdin, args[1:])
			if err != nil {
				return err
			}
			c, m, key, err := e.kvTarget(ctx, args[0], mount)
			if err != nil {
				return err
			}
			body := map[string]any{"data": data}
			if cas >= 0 {
				body["options"] = map[string]any{"cas": cas}
			}
			var s *api.Secret
			if patch {
				s, err = c.Logical().Patch(ctx, kvAPIPath(m, "data", key), body)
			} else {
				s, err = c.Logical().Write(ctx, kvAPIPath(m, "data", key), body)
			}
			if err != nil {
				return err
			}
			if s == nil {
				return nil
			}
			return e.print(s.Data, nil)
		},
	}
	cmd.Flags().StringVar(&mount, "mount", "", "the KV mount (default: found from the path)")
	cmd.Flags().IntVar(&cas, "cas", -1, "check-and-set: the version this write expects to replace (0: only if absent)")
	return cmd
}

func newKVGetCmd(e *env) *cobra.Command {
	var mount, field string
	var version int
	cmd := &cobra.Command{
		Use:   "get PATH",
		Short: "Read a secret (the latest version, or -version)",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, m, key, err := e.kvTarget(ctx, args[0], mount)
			if err != nil {
				return err
			}
			var q url.Values
			if version > 0 {
				q = url.Values{"version": {strconv.Itoa(version)}}
			}
			s, err := c.Logical().Read(ctx, kvAPIPath(m, "data", key), q)
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("no value found at %s", kvAPIPath(m, "data", key))
			}
			data, _ := s.Data["data"].(map[string]any)
			if data == nil {
				return fmt.Errorf("version of %s is deleted or destroyed (see kv metadata get)", args[0])
			}
			if field != "" {
				v, ok := data[field]
				if !ok {
					return fmt.Errorf("field %q not present in secret", field)
				}
				e.printValue(v)
				return nil
			}
			if e.outFormat() != "table" {
				return e.print(s.Data, nil)
			}
			fmt.Fprintln(e.stdout, "== Metadata ==")
			if err := writeTable(e.stdout, rowsOf(s.Data["metadata"])); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "\n== Data ==")
			return writeTable(e.stdout, rowsOf(data))
		},
	}
	cmd.Flags().StringVar(&mount, "mount", "", "the KV mount (default: found from the path)")
	cmd.Flags().StringVar(&field, "field", "", "print only this field's value")
	cmd.Flags().IntVar(&version, "version", 0, "the version to read (default: latest)")
	return cmd
}

// newKVVersionsCmd serves delete, undelete and destroy.
func newKVVersionsCmd(e *env, op string) *cobra.Command {
	var mount, versions string
	short := map[string]string{
		"delete":   "Soft-delete the latest version, or -versions",
		"undelete": "Restore soft-deleted -versions",
		"destroy":  "Permanently destroy -versions",
	}[op]
	cmd := &cobra.Command{
		Use:   op + " PATH",
		Short: short,
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var vs []int
			for _, s := range strings.Split(versions, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 {
					return usagef("-versions: %q is not a version number", s)
				}
				vs = append(vs, n)
			}
			if op != "delete" && len(vs) == 0 {
				return usagef("%s needs -versions", op)
			}
			c, m, key, err := e.kvTarget(ctx, args[0], mount)
			if err != nil {
				return err
			}
			if op == "delete" && len(vs) == 0 {
				err = c.Logical().Delete(ctx, kvAPIPath(m, "data", key))
			} else {
				_, err = c.Logical().Write(ctx, kvAPIPath(m, op, key), map[string]any{"versions": vs})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Data %sd at: %s\n", strings.TrimSuffix(op, "e"), args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&mount, "mount", "", "the KV mount (default: found from the path)")
	cmd.Flags().StringVar(&versions, "versions", "", "comma-separated version numbers")
	return cmd
}

func newKVListCmd(e *env) *cobra.Command {
	var mount string
	cmd := &cobra.Command{
		Use:   "list PATH",
		Short: "List the keys and folders under PATH",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, m, key, err := e.kvTarget(ctx, args[0], mount)
			if err != nil {
				return err
			}
			s, err := c.Logical().List(ctx, kvAPIPath(m, "metadata", key))
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("no keys found under %s", args[0])
			}
			if e.outFormat() != "table" {
				return e.print(s.Data["keys"], nil)
			}
			keys, _ := s.Data["keys"].([]any)
			fmt.Fprintln(e.stdout, "Keys\n----")
			for _, k := range keys {
				fmt.Fprintln(e.stdout, k)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mount, "mount", "", "the KV mount (default: found from the path)")
	return cmd
}

func newKVMetadataCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "metadata", Short: "Read, write and delete a secret's metadata"}
	var mount string
	get := &cobra.Command{
		Use:   "get PATH",
		Short: "Show a secret's metadata and versions",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, m, key, err := e.kvTarget(ctx, args[0], mount)
			if err != nil {
				return err
			}
			s, err := c.Logical().Read(ctx, kvAPIPath(m, "metadata", key), nil)
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("no metadata found at %s", args[0])
			}
			return e.print(s.Data, nil)
		},
	}
	var maxVersions int
	var casRequired bool
	var deleteAfter, expireAfter, rotation string
	var custom []string
	put := &cobra.Command{
		Use:   "put PATH",
		Short: "Set max versions, check-and-set, deletion, expiry, rotation period and custom metadata",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			body := map[string]any{}
			fl := cmd.Flags()
			if fl.Changed("max-versions") {
				body["max_versions"] = maxVersions
			}
			if fl.Changed("cas-required") {
				body["cas_required"] = casRequired
			}
			if fl.Changed("delete-version-after") {
				body["delete_version_after"] = deleteAfter
			}
			if fl.Changed("expire-after") {
				body["expire_after"] = expireAfter
			}
			if fl.Changed("rotation-period") {
				body["rotation_period"] = rotation
			}
			if len(custom) > 0 {
				cm := map[string]string{}
				for _, kv := range custom {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						return usagef("-custom-metadata %q is not key=value", kv)
					}
					cm[k] = v
				}
				body["custom_metadata"] = cm
			}
			c, m, key, err := e.kvTarget(ctx, args[0], mount)
			if err != nil {
				return err
			}
			if _, err := c.Logical().Write(ctx, kvAPIPath(m, "metadata", key), body); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Metadata written to: %s\n", args[0])
			return nil
		},
	}
	put.Flags().IntVar(&maxVersions, "max-versions", 0, "versions to keep (0: the engine default)")
	put.Flags().BoolVar(&casRequired, "cas-required", false, "require -cas on every write")
	put.Flags().StringVar(&deleteAfter, "delete-version-after", "", "soft-delete versions this long after they are written")
	put.Flags().StringVar(&expireAfter, "expire-after", "", "coffer: destroy versions this long after they are written (hard expiry)")
	put.Flags().StringVar(&rotation, "rotation-period", "", "coffer: the secret should be rotated this often")
	put.Flags().StringArrayVar(&custom, "custom-metadata", nil, "key=value custom metadata (repeatable)")
	del := &cobra.Command{
		Use:   "delete PATH",
		Short: "Delete a secret's metadata and every version",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, m, key, err := e.kvTarget(ctx, args[0], mount)
			if err != nil {
				return err
			}
			if err := c.Logical().Delete(ctx, kvAPIPath(m, "metadata", key)); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Data deleted (if it existed) at: %s\n", args[0])
			return nil
		},
	}
	for _, c := range []*cobra.Command{get, put, del} {
		c.Flags().StringVar(&mount, "mount", "", "the KV mount (default: found from the path)")
	}
	cmd.AddCommand(get, put, del)
	return cmd
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
