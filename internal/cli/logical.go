package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/api"
)

// The generic commands read, write, list and delete reach any API path,
// as vault read/write/list/delete do: auth method configs and roles,
// engine settings, sys endpoints.
func newLogicalCmds(e *env) []*cobra.Command {
	var readField string
	read := &cobra.Command{
		Use:   "read PATH",
		Short: "Read any API path (e.g. auth/kubernetes/config)",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			p := logicalPath(args[0])
			s, err := c.Logical().Read(cmd.Context(), p, nil)
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("no value found at %s", p)
			}
			return e.printSecret(s, readField)
		},
	}
	read.Flags().StringVar(&readField, "field", "", "print only this field of the response data")

	var writeField string
	write := &cobra.Command{
		Use:   "write PATH [K=V | K=@FILE | -]...",
		Short: "Write to any API path; - reads a JSON object from standard input",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := parseKV(e.stdin, args[1:])
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			p := logicalPath(args[0])
			s, err := c.Logical().Write(cmd.Context(), p, data)
			if err != nil {
				return err
			}
			if s == nil || (len(s.Data) == 0 && s.Auth == nil) {
				if writeField != "" {
					return fmt.Errorf("field %q not present in the response", writeField)
				}
				fmt.Fprintf(e.stderr, "Success! Data written to: %s\n", p)
				return nil
			}
			return e.printSecret(s, writeField)
		},
	}
	write.Flags().StringVar(&writeField, "field", "", "print only this field of the response data")

	list := &cobra.Command{
		Use:   "list PATH",
		Short: "List the keys under any API path",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			p := logicalPath(args[0])
			s, err := c.Logical().List(cmd.Context(), p)
			if err != nil {
				return err
			}
			if s == nil || s.Data["keys"] == nil {
				return fmt.Errorf("no entries found at %s", p)
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

	del := &cobra.Command{
		Use:   "delete PATH",
		Short: "Delete at any API path",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			p := logicalPath(args[0])
			if err := c.Logical().Delete(cmd.Context(), p); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Data deleted (if it existed) at: %s\n", p)
			return nil
		},
	}
	return []*cobra.Command{read, write, list, del}
}

// logicalPath accepts paths with or without a leading slash or "v1/".
func logicalPath(p string) string {
	p = strings.TrimPrefix(strings.TrimLeft(p, "/"), "v1/")
	return p
}

// printSecret prints a response: one field, the whole envelope in json or
// yaml, or a Key/Value table of its data (and auth block).
func (e *env) printSecret(s *api.Secret, field string) error {
	if field != "" {
		v, ok := s.Data[field]
		if !ok && s.Auth != nil && field == "token" {
			v, ok = s.Auth.ClientToken, true
		}
		if !ok {
			return fmt.Errorf("field %q not present in the response", field)
		}
		e.printValue(v)
		return nil
	}
	if e.outFormat() != "table" {
		return e.print(s, nil)
	}
	var rows []row
	if s.Auth != nil {
		rows = append(rows, row{"token", s.Auth.ClientToken}, row{"token_accessor", s.Auth.Accessor},
			row{"token_duration", s.Auth.LeaseDuration}, row{"token_renewable", s.Auth.Renewable},
			row{"token_policies", s.Auth.Policies})
		keys := make([]string, 0, len(s.Auth.Metadata))
		for k := range s.Auth.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			rows = append(rows, row{"token_meta_" + k, s.Auth.Metadata[k]})
		}
	}
	rows = append(rows, rowsOf(s.Data)...)
	return writeTable(e.stdout, rows)
}

// printValue prints one field's value for -field: a string as it is,
// anything else as JSON.
func (e *env) printValue(v any) {
	if str, ok := v.(string); ok {
		fmt.Fprintln(e.stdout, str)
		return
	}
	b, _ := json.Marshal(v)
	fmt.Fprintln(e.stdout, string(b))
}
