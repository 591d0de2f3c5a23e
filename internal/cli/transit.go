package cli

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/api"
)

// transitFlags are what every transit command shares.
type transitFlags struct {
	mount string
}

func (f *transitFlags) path(kind, name string) string {
	return strings.Trim(f.mount, "/") + "/" + kind + "/" + name
}

func (f *transitFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.mount, "mount", "transit", "the transit mount")
}

func newTransitCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transit",
		Short: "Encrypt, decrypt, sign and MAC with keys that never leave the server",
		Long: `Encrypt, decrypt, sign and MAC with keys that never leave the server (the transit engine).

Data to encrypt, sign or MAC is the argument, the file named by -in, or standard input
(-in - or no argument). Files are read as raw bytes. Ciphertexts and signatures are printed
on one line; decrypt writes the plaintext bytes exactly, to standard output or -out.

  coffer transit keys create app
  coffer transit encrypt app -in backup.tar > backup.tar.enc
  coffer transit decrypt app -in backup.tar.enc -out backup.tar
  echo -n hello | coffer transit encrypt app`,
	}
	cmd.AddCommand(newTransitKeysCmd(e), newTransitEncryptCmd(e), newTransitDecryptCmd(e),
		newTransitSignCmd(e), newTransitVerifyCmd(e), newTransitHMACCmd(e))
	return cmd
}

// readInput returns the data of an encrypt, sign or hmac: the argument,
// the -in file ("-": standard input) or standard input.
func (e *env) readInput(args []string, in string) ([]byte, error) {
	switch {
	case len(args) > 1 && in != "":
		return nil, usagef("give the data as an argument or with -in, not both")
	case len(args) > 1:
		return []byte(args[1]), nil
	case in != "" && in != "-":
		b, err := os.ReadFile(in)
		if err != nil {
			return nil, fmt.Errorf("read -in: %w", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(e.stdin)
	if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	return b, nil
}

// writeOutput writes b to the -out file (mode 0600) or standard output.
func (e *env) writeOutput(out string, b []byte) error {
	if out == "" || out == "-" {
		_, err := e.stdout.Write(b)
		return err
	}
	if err := os.WriteFile(out, b, 0o600); err != nil {
		return fmt.Errorf("write -out: %w", err)
	}
	return nil
}

// transitWrite posts body to path and returns the response data.
func (e *env) transitWrite(cmd *cobra.Command, path string, body map[string]any) (map[string]any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	s, err := c.Logical().Write(cmd.Context(), path, body)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, nil
	}
	return s.Data, nil
}

// printField prints one string field of a response on its own line, or
// the whole response when -format was given.
func (e *env) printField(data map[string]any, name, out string) error {
	if e.format != "" {
		return e.print(data, nil)
	}
	v, ok := data[name].(string)
	if !ok {
		return fmt.Errorf("the response has no %s", name)
	}
	return e.writeOutput(out, []byte(v+"\n"))
}

func b64Flag(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func newTransitEncryptCmd(e *env) *cobra.Command {
	var f transitFlags
	var in, out, context string
	var version int
	cmd := &cobra.Command{
		Use:   "encrypt KEY [PLAINTEXT]",
		Short: "Encrypt the argument, -in FILE or standard input; print the ciphertext",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pt, err := e.readInput(args, in)
			if err != nil {
				return err
			}
			body := map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}
			if context != "" {
				body["context"] = b64Flag(context)
			}
			if version > 0 {
				body["key_version"] = version
			}
			data, err := e.transitWrite(cmd, f.path("encrypt", args[0]), body)
			if err != nil {
				return err
			}
			return e.printField(data, "ciphertext", out)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&in, "in", "", "read the plaintext from this file (- for standard input)")
	cmd.Flags().StringVar(&out, "out", "", "write the ciphertext to this file")
	cmd.Flags().StringVar(&context, "context", "", "the context of a derived key")
	cmd.Flags().IntVar(&version, "key-version", 0, "encrypt with this key version (default: latest)")
	return cmd
}

func newTransitDecryptCmd(e *env) *cobra.Command {
	var f transitFlags
	var in, out, context string
	cmd := &cobra.Command{
		Use:   "decrypt KEY [CIPHERTEXT]",
		Short: "Decrypt the argument, -in FILE or standard input; write the plaintext bytes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := e.readInput(args, in)
			if err != nil {
				return err
			}
			body := map[string]any{"ciphertext": strings.TrimSpace(string(raw))}
			if context != "" {
				body["context"] = b64Flag(context)
			}
			data, err := e.transitWrite(cmd, f.path("decrypt", args[0]), body)
			if err != nil {
				return err
			}
			if e.format != "" {
				return e.print(data, nil)
			}
			s, _ := data["plaintext"].(string)
			pt, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return fmt.Errorf("the server answered a plaintext that is not base64: %w", err)
			}
			return e.writeOutput(out, pt)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&in, "in", "", "read the ciphertext from this file (- for standard input)")
	cmd.Flags().StringVar(&out, "out", "", "write the plaintext to this file (mode 0600)")
	cmd.Flags().StringVar(&context, "context", "", "the context of a derived key")
	return cmd
}

// signFlags are the options sign and verify share.
type signFlags struct {
	in, context, hash, sigAlg, marshal string
	prehashed                          bool
}

func (s *signFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&s.in, "in", "", "read the input from this file (- for standard input)")
	fl.StringVar(&s.context, "context", "", "the context of a derived key")
	fl.StringVar(&s.hash, "hash-algorithm", "", "sha2-256 (default), sha2-224/384/512, sha3-*, sha1 or none")
	fl.StringVar(&s.sigAlg, "signature-algorithm", "", "RSA keys: pss (default) or pkcs1v15")
	fl.StringVar(&s.marshal, "marshaling-algorithm", "", "ECDSA keys: asn1 (default) or jws")
	fl.BoolVar(&s.prehashed, "prehashed", false, "the input is already a digest")
}

func (s *signFlags) body(input []byte) map[string]any {
	body := map[string]any{"input": base64.StdEncoding.EncodeToString(input)}
	for k, v := range map[string]string{"hash_algorithm": s.hash, "signature_algorithm": s.sigAlg, "marshaling_algorithm": s.marshal} {
		if v != "" {
			body[k] = v
		}
	}
	if s.context != "" {
		body["context"] = b64Flag(s.context)
	}
	if s.prehashed {
		body["prehashed"] = true
	}
	return body
}

func newTransitSignCmd(e *env) *cobra.Command {
	var f transitFlags
	var s signFlags
	var out string
	cmd := &cobra.Command{
		Use:   "sign KEY [INPUT]",
		Short: "Sign the argument, -in FILE or standard input; print the signature",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			input, err := e.readInput(args, s.in)
			if err != nil {
				return err
			}
			data, err := e.transitWrite(cmd, f.path("sign", args[0]), s.body(input))
			if err != nil {
				return err
			}
			return e.printField(data, "signature", out)
		},
	}
	f.add(cmd)
	s.add(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write the signature to this file")
	return cmd
}

func newTransitVerifyCmd(e *env) *cobra.Command {
	var f transitFlags
	var s signFlags
	var sig, mac string
	cmd := &cobra.Command{
		Use:   "verify KEY [INPUT] (-signature SIG | -hmac HMAC)",
		Short: "Check a signature or HMAC; exit 1 when it does not match",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (sig == "") == (mac == "") {
				return usagef("give exactly one of -signature and -hmac")
			}
			input, err := e.readInput(args, s.in)
			if err != nil {
				return err
			}
			body := s.body(input)
			if sig != "" {
				body["signature"] = sig
			} else {
				body["hmac"] = mac
			}
			data, err := e.transitWrite(cmd, f.path("verify", args[0]), body)
			if err != nil {
				return err
			}
			if e.format != "" {
				if err := e.print(data, nil); err != nil {
					return err
				}
			}
			if valid, _ := data["valid"].(bool); !valid {
				return exitError{code: 1, msg: "signature or hmac does not match the input"}
			}
			if e.format == "" {
				fmt.Fprintln(e.stdout, "valid")
			}
			return nil
		},
	}
	f.add(cmd)
	s.add(cmd)
	cmd.Flags().StringVar(&sig, "signature", "", "the signature to check (vault:v1:...)")
	cmd.Flags().StringVar(&mac, "hmac", "", "the HMAC to check (vault:v1:...)")
	return cmd
}

func newTransitHMACCmd(e *env) *cobra.Command {
	var f transitFlags
	var in, out, alg string
	cmd := &cobra.Command{
		Use:   "hmac KEY [INPUT]",
		Short: "HMAC the argument, -in FILE or standard input with the key's HMAC key",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			input, err := e.readInput(args, in)
			if err != nil {
				return err
			}
			body := map[string]any{"input": base64.StdEncoding.EncodeToString(input)}
			if alg != "" {
				body["algorithm"] = alg
			}
			data, err := e.transitWrite(cmd, f.path("hmac", args[0]), body)
			if err != nil {
				return err
			}
			return e.printField(data, "hmac", out)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&in, "in", "", "read the input from this file (- for standard input)")
	cmd.Flags().StringVar(&out, "out", "", "write the HMAC to this file")
	cmd.Flags().StringVar(&alg, "algorithm", "", "sha2-256 (default), sha2-224/384/512, sha3-* or sha1")
	return cmd
}

func newTransitKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create, list, read, rotate, configure and delete transit keys"}
	var f transitFlags
	info := func(cmd *cobra.Command, s *api.Secret, err error) error {
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("no key found")
		}
		for _, w := range s.Warnings {
			fmt.Fprintf(e.stderr, "warning: %s\n", w)
		}
		return e.print(s.Data, nil)
	}
	var typ, rotate string
	var derived, convergent, exportable bool
	create := &cobra.Command{
		Use:   "create KEY",
		Short: "Create a key (default type aes256-gcm96)",
		Args:  exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if typ != "" {
				body["type"] = typ
			}
			for k, v := range map[string]bool{"derived": derived, "convergent_encryption": convergent, "exportable": exportable} {
				if v {
					body[k] = true
				}
			}
			if rotate != "" {
				body["auto_rotate_period"] = rotate
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().Write(cmd.Context(), f.path("keys", args[0]), body)
			return info(cmd, s, err)
		},
	}
	create.Flags().StringVar(&typ, "type", "", "aes256-gcm96, aes128-gcm96, chacha20-poly1305, ed25519, ecdsa-p256/p384/p521, rsa-2048/3072/4096")
	create.Flags().BoolVar(&derived, "derived", false, "derive a key per context (every call then needs -context)")
	create.Flags().BoolVar(&convergent, "convergent", false, "equal plaintexts give equal ciphertexts under one context (needs -derived)")
	create.Flags().BoolVar(&exportable, "exportable", false, "allow the key material to be exported (cannot be undone)")
	create.Flags().StringVar(&rotate, "auto-rotate-period", "", "rotate automatically this often (at least 1h)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().List(cmd.Context(), strings.Trim(f.mount, "/")+"/keys")
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("no keys in %s/", strings.Trim(f.mount, "/"))
			}
			if e.outFormat() != "table" {
				return e.print(s.Data["keys"], nil)
			}
			fmt.Fprintln(e.stdout, "Keys\n----")
			for _, k := range s.Data["keys"].([]any) {
				fmt.Fprintln(e.stdout, k)
			}
			return nil
		},
	}
	read := &cobra.Command{
		Use:   "read KEY",
		Short: "Show a key's versions and settings",
		Args:  exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().Read(cmd.Context(), f.path("keys", args[0]), nil)
			if err == nil && s == nil {
				return fmt.Errorf("no key named %q in %s/", args[0], strings.Trim(f.mount, "/"))
			}
			return info(cmd, s, err)
		},
	}
	rot := &cobra.Command{
		Use:   "rotate KEY",
		Short: "Add a new key version; new encryptions use it, old ciphertexts still decrypt",
		Args:  exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().Write(cmd.Context(), f.path("keys", args[0])+"/rotate", nil)
			return info(cmd, s, err)
		},
	}
	del := &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a key and every version (needs deletion_allowed; see keys config)",
		Args:  exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.Logical().Delete(cmd.Context(), f.path("keys", args[0])); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Deleted key %s (if it existed)\n", args[0])
			return nil
		},
	}
	var minDec, minEnc int
	var delAllowed, export bool
	var cfgRotate string
	config := &cobra.Command{
		Use:   "config KEY",
		Short: "Set min decryption/encryption versions, deletion_allowed, exportable, auto-rotate period",
		Args:  exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			body := map[string]any{}
			for flag, name := range map[string]string{"min-decryption-version": "min_decryption_version", "min-encryption-version": "min_encryption_version",
				"deletion-allowed": "deletion_allowed", "exportable": "exportable", "auto-rotate-period": "auto_rotate_period"} {
				if fl.Changed(flag) {
					body[name] = fl.Lookup(flag).Value.String()
				}
			}
			if len(body) == 0 {
				return usagef("nothing to change: give at least one flag")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().Write(cmd.Context(), f.path("keys", args[0])+"/config", body)
			return info(cmd, s, err)
		},
	}
	config.Flags().IntVar(&minDec, "min-decryption-version", 0, "oldest version that may decrypt or verify")
	config.Flags().IntVar(&minEnc, "min-encryption-version", 0, "oldest version that may encrypt or sign (0: latest only by default)")
	config.Flags().BoolVar(&delAllowed, "deletion-allowed", false, "allow keys delete")
	config.Flags().BoolVar(&export, "exportable", false, "allow export (cannot be undone)")
	config.Flags().StringVar(&cfgRotate, "auto-rotate-period", "", "rotate automatically this often (at least 1h; 0 disables)")
	for _, c := range []*cobra.Command{create, list, read, rot, del, config} {
		f.add(c)
	}
	cmd.AddCommand(create, list, read, rot, del, config)
	return cmd
}
