package cli

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/internal/audit"
)

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Enable, disable, list and verify audit devices"}
	var path, desc string
	enable := &cobra.Command{
		Use:   "enable TYPE [K=V...]",
		Short: "Enable an audit device: file (file_path=...), socket (address=..., socket_type=tcp|unix) or stdout",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usagef("expected TYPE and options")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := map[string]string{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("option %q is not key=value", kv)
				}
				opts[k] = v
			}
			p := path
			if p == "" {
				p = args[0]
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if _, err := c.Logical().Write(cmd.Context(), "sys/audit/"+strings.Trim(p, "/"),
				map[string]any{"type": args[0], "description": desc, "options": opts}); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Enabled the %s audit device at: %s/\n", args[0], strings.Trim(p, "/"))
			return nil
		},
	}
	enable.Flags().StringVar(&path, "path", "", "device path (default: the type)")
	enable.Flags().StringVar(&desc, "description", "", "human-readable description")
	disable := &cobra.Command{
		Use:   "disable PATH",
		Short: "Disable the audit device at PATH",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.Logical().Delete(cmd.Context(), "sys/audit/"+strings.Trim(args[0], "/")); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Disabled the audit device (if it existed) at: %s/\n", strings.Trim(args[0], "/"))
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit devices with their public keys and chain heads",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().Read(cmd.Context(), "sys/audit", nil)
			if err != nil {
				return err
			}
			if s == nil {
				return nil
			}
			if e.outFormat() != "table" {
				return e.print(s.Data, nil)
			}
			var rows []row
			for _, p := range sortedKeys(s.Data) {
				d, _ := s.Data[p].(map[string]any)
				rows = append(rows, row{p, fmt.Sprintf("%v %v", d["type"], d["options"])})
			}
			return writeTable(e.stdout, rows)
		},
	}
	var pubKey, device string
	var headSeq string
	var headHash string
	verify := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check an audit log's hash chain and checkpoint signatures",
		Long: `Check an audit log's hash chain and checkpoint signatures.

Give the files in order (rotated files first). The public key comes from -public-key
(base64 or hex), or from the server with -device PATH (which also fetches the device's
current chain head, so a truncated tail is detected).`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("expected at least one FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var pub ed25519.PublicKey
			var head *audit.Head
			if pubKey != "" {
				k, err := decodeKey(pubKey)
				if err != nil {
					return err
				}
				pub = k
			}
			if device != "" {
				c, err := e.client()
				if err != nil {
					return err
				}
				s, err := c.Logical().Read(cmd.Context(), "sys/audit", nil)
				if err != nil {
					return err
				}
				d, _ := s.Data[strings.Trim(device, "/")+"/"].(map[string]any)
				if d == nil {
					return fmt.Errorf("no audit device at %s", device)
				}
				if pub == nil {
					k, err := decodeKey(fmt.Sprint(d["public_key"]))
					if err != nil {
						return err
					}
					pub = k
				}
				if h, ok := d["head"].(map[string]any); ok {
					seq, _ := strconv.ParseUint(fmt.Sprint(h["seq"]), 10, 64)
					head = &audit.Head{Seq: seq, Hash: fmt.Sprint(h["hash"])}
				}
			}
			if headSeq != "" {
				seq, err := strconv.ParseUint(headSeq, 10, 64)
				if err != nil {
					return usagef("-head-seq: %v", err)
				}
				head = &audit.Head{Seq: seq, Hash: headHash}
			}
			rep, err := audit.Verify(args, pub, head)
			if err != nil {
				return err
			}
			if e.outFormat() == "json" {
				b, _ := json.MarshalIndent(rep, "", "  ")
				fmt.Fprintln(e.stdout, string(b))
			} else {
				fmt.Fprintln(e.stdout, reportText(rep))
			}
			if !rep.OK {
				return exitError{code: 1}
			}
			return nil
		},
	}
	verify.Flags().StringVar(&pubKey, "public-key", "", "the device's Ed25519 public key (base64 or hex)")
	verify.Flags().StringVar(&device, "device", "", "fetch the public key and chain head of this device from the server")
	verify.Flags().StringVar(&headSeq, "head-seq", "", "expected last seq (with -head-hash) to detect truncation")
	verify.Flags().StringVar(&headHash, "head-hash", "", "expected hash of the last record")
	cmd.AddCommand(enable, disable, list, verify)
	return cmd
}

func decodeKey(s string) (ed25519.PublicKey, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	return nil, fmt.Errorf("public key %q is not a base64 or hex Ed25519 key", s)
}

func reportText(r *audit.Report) string {
	if !r.OK {
		return "FAIL " + r.Problem.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "OK %d records (seq %d..%d), %d signed checkpoints", r.Records, r.FirstSeq, r.Last.Seq, r.Checkpoints)
	if r.SignaturesChecked {
		fmt.Fprintf(&b, "; signed through seq %d", r.SignedThrough)
	} else {
		b.WriteString("; signatures NOT checked (no public key)")
	}
	if r.HeadChecked {
		b.WriteString("; matches the server's chain head")
	}
	return b.String()
}

var _ = sort.Strings
