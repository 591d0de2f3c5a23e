package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/internal/policy"
)

func newPolicyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Write, read, list, delete and format ACL policies"}
	readSource := func(src string) (string, error) {
		var b []byte
		var err error
		if src == "-" {
			b, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20))
		} else {
			b, err = os.ReadFile(src)
		}
		if err != nil {
			return "", fmt.Errorf("read policy: %w", err)
		}
		return string(b), nil
	}
	write := &cobra.Command{
		Use:   "write NAME FILE|-",
		Short: "Upload a policy (HCL or JSON) from a file or standard input",
		Args:  exactArgs(2, "NAME FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readSource(args[1])
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if _, err := c.Logical().Write(cmd.Context(), "sys/policies/acl/"+args[0], map[string]any{"policy": text}); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Uploaded policy: %s\n", args[0])
			return nil
		},
	}
	read := &cobra.Command{
		Use:   "read NAME",
		Short: "Print a policy",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().Read(cmd.Context(), "sys/policies/acl/"+args[0], nil)
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("no policy named %q", args[0])
			}
			if e.outFormat() != "table" {
				return e.print(s.Data, nil)
			}
			fmt.Fprintln(e.stdout, s.Data["policy"])
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List policy names",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().List(cmd.Context(), "sys/policies/acl")
			if err != nil {
				return err
			}
			if s == nil {
				return nil
			}
			if e.outFormat() != "table" {
				return e.print(s.Data["keys"], nil)
			}
			keys, _ := s.Data["keys"].([]any)
			for _, k := range keys {
				fmt.Fprintln(e.stdout, k)
			}
			return nil
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.Logical().Delete(cmd.Context(), "sys/policies/acl/"+args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Deleted policy: %s\n", args[0])
			return nil
		},
	}
	fmtCmd := &cobra.Command{
		Use:   "fmt FILE|-",
		Short: "Check a policy and rewrite it in canonical HCL (in place for a file)",
		Args:  exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readSource(args[0])
			if err != nil {
				return err
			}
			p, err := policy.Parse(strings.TrimSuffix(args[0], ".hcl"), text)
			if err != nil {
				return fmt.Errorf("failed to parse policy: %w", err)
			}
			out := p.String()
			if args[0] == "-" {
				_, err = io.WriteString(e.stdout, out)
				return err
			}
			if err := os.WriteFile(args[0], []byte(out), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Formatted policy: %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(write, read, list, del, fmtCmd)
	return cmd
}
