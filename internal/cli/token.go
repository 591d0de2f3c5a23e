package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/api"
)

func newTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, look up, renew and revoke tokens"}
	var policies, metas []string
	var ttl, maxTTL, period, displayName string
	var uses int
	var orphan, noDefault bool
	var renewable = true
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a child token of the current token",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"policies": policies, "num_uses": uses, "renewable": renewable,
				"no_default_policy": noDefault, "display_name": displayName}
			if ttl != "" {
				body["ttl"] = ttl
			}
			if maxTTL != "" {
				body["explicit_max_ttl"] = maxTTL
			}
			if period != "" {
				body["period"] = period
			}
			if len(metas) > 0 {
				m := map[string]string{}
				for _, kv := range metas {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						return usagef("-metadata %q is not key=value", kv)
					}
					m[k] = v
				}
				body["meta"] = m
			}
			path := "auth/token/create"
			if orphan {
				path = "auth/token/create-orphan"
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Logical().Write(cmd.Context(), path, body)
			if err != nil {
				return err
			}
			return e.printAuth(s)
		},
	}
	fl := create.Flags()
	fl.StringSliceVar(&policies, "policy", nil, "policy for the token (repeatable; default: the parent's)")
	fl.StringArrayVar(&metas, "metadata", nil, "key=value metadata (repeatable)")
	fl.StringVar(&ttl, "ttl", "", "initial TTL, e.g. 1h")
	fl.StringVar(&maxTTL, "explicit-max-ttl", "", "hard limit no renewal extends")
	fl.StringVar(&period, "period", "", "make a periodic token renewed by this period")
	fl.StringVar(&displayName, "display-name", "", "name shown in audit logs")
	fl.IntVar(&uses, "use-limit", 0, "number of uses (0: unlimited)")
	fl.BoolVar(&orphan, "orphan", false, "create a token with no parent")
	fl.BoolVar(&noDefault, "no-default-policy", false, "do not attach the default policy")
	fl.BoolVar(&renewable, "renewable", true, "allow renewal")

	var accessor bool
	lookup := &cobra.Command{
		Use:   "lookup [TOKEN]",
		Short: "Show a token's properties (the current token when none is given)",
		Args:  maxArgs(1, "TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var s *api.Secret
			switch {
			case len(args) == 0:
				s, err = c.Logical().Read(cmd.Context(), "auth/token/lookup-self", nil)
			case accessor:
				s, err = c.Logical().Write(cmd.Context(), "auth/token/lookup-accessor", map[string]any{"accessor": args[0]})
			default:
				s, err = c.Logical().Write(cmd.Context(), "auth/token/lookup", map[string]any{"token": args[0]})
			}
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("token not found")
			}
			return e.print(s.Data, nil)
		},
	}
	lookup.Flags().BoolVar(&accessor, "accessor", false, "the argument is an accessor")

	var increment string
	renew := &cobra.Command{
		Use:   "renew [TOKEN]",
		Short: "Renew a token (the current token when none is given)",
		Args:  maxArgs(1, "TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			body := map[string]any{}
			if increment != "" {
				body["increment"] = increment
			}
			path := "auth/token/renew-self"
			if len(args) == 1 {
				path, body["token"] = "auth/token/renew", args[0]
			}
			s, err := c.Logical().Write(cmd.Context(), path, body)
			if err != nil {
				return err
			}
			return e.printAuth(s)
		},
	}
	renew.Flags().StringVar(&increment, "increment", "", "requested TTL, e.g. 1h")

	var revAccessor, revSelf, revOrphan bool
	revoke := &cobra.Command{
		Use:   "revoke [TOKEN]",
		Short: "Revoke a token and all its children",
		Args:  maxArgs(1, "TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var path string
			body := map[string]any{}
			switch {
			case revSelf:
				path = "auth/token/revoke-self"
			case len(args) == 0:
				return usagef("give a TOKEN, or -self")
			case revAccessor:
				path, body["accessor"] = "auth/token/revoke-accessor", args[0]
			case revOrphan:
				path, body["token"] = "auth/token/revoke-orphan", args[0]
			default:
				path, body["token"] = "auth/token/revoke", args[0]
			}
			if _, err := c.Logical().Write(cmd.Context(), path, body); err != nil {
				return err
			}
			fmt.Fprintln(e.stderr, "Success! Revoked token (if it existed)")
			return nil
		},
	}
	revoke.Flags().BoolVar(&revAccessor, "accessor", false, "the argument is an accessor")
	revoke.Flags().BoolVar(&revSelf, "self", false, "revoke the current token")
	revoke.Flags().BoolVar(&revOrphan, "mode-orphan", false, "revoke only the token; its children become orphans")

	caps := &cobra.Command{
		Use:   "capabilities [TOKEN] PATH",
		Short: "Show a token's capabilities on PATH (the current token when TOKEN is omitted)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("expected [TOKEN] PATH")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var s *api.Secret
			if len(args) == 1 {
				s, err = c.Logical().Write(cmd.Context(), "sys/capabilities-self", map[string]any{"paths": []string{args[0]}})
			} else {
				s, err = c.Logical().Write(cmd.Context(), "sys/capabilities", map[string]any{"token": args[0], "paths": []string{args[1]}})
			}
			if err != nil {
				return err
			}
			if e.outFormat() != "table" {
				return e.print(s.Data["capabilities"], nil)
			}
			fmt.Fprintln(e.stdout, cell(s.Data["capabilities"]))
			return nil
		},
	}
	cmd.AddCommand(create, lookup, renew, revoke, caps)
	return cmd
}

func (e *env) printAuth(s *api.Secret) error {
	if s == nil || s.Auth == nil {
		return fmt.Errorf("the server returned no token")
	}
	a := s.Auth
	return e.print(a, []row{
		{"token", a.ClientToken}, {"token_accessor", a.Accessor}, {"token_duration", a.LeaseDuration},
		{"token_renewable", a.Renewable}, {"token_policies", a.TokenPolicies}, {"policies", a.Policies},
		{"token_meta", a.Metadata},
	})
}

func newLoginCmd(e *env) *cobra.Command {
	var method, path string
	cmd := &cobra.Command{
		Use:   "login [TOKEN | K=V...]",
		Short: "Log in and store the token in ~/.coffer-token (mode 0600)",
		Long: `Log in and store the token in ~/.coffer-token (mode 0600).

  coffer login TOKEN                                     check and store a token
  coffer login -method=kubernetes role=app jwt=@/var/run/secrets/kubernetes.io/serviceaccount/token
  coffer login -method=jwt role=ci jwt=@token.jwt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var tok string
			if method == "" || method == "token" {
				switch len(args) {
				case 0:
					if tok, err = e.readSecret("Token (will be hidden): "); err != nil {
						return err
					}
				case 1:
					tok = args[0]
				default:
					return usagef("expected one TOKEN")
				}
				c.SetToken(tok)
				if _, err := c.Logical().Read(cmd.Context(), "auth/token/lookup-self", nil); err != nil {
					return fmt.Errorf("token rejected: %w", err)
				}
			} else {
				data, err := parseKV(e.stdin, args)
				if err != nil {
					return err
				}
				if path == "" {
					path = method
				}
				c.SetToken("")
				s, err := c.Logical().Write(cmd.Context(), "auth/"+strings.Trim(path, "/")+"/login", data)
				if err != nil {
					return err
				}
				if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
					return fmt.Errorf("login returned no token")
				}
				tok = s.Auth.ClientToken
				if err := e.printAuth(s); err != nil {
					return err
				}
			}
			f := tokenFile()
			if f == "" {
				return fmt.Errorf("no home directory to store the token in")
			}
			if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
				return fmt.Errorf("store token: %w", err)
			}
			if err := os.Chmod(f, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Token stored in %s\n", f)
			return nil
		},
	}
	cmd.Flags().StringVar(&method, "method", "token", "auth method: token, kubernetes, jwt")
	cmd.Flags().StringVar(&path, "path", "", "mount path of the auth method (default: the method name)")
	return cmd
}

func newAuthCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "auth", Short: "Enable, disable and list auth methods"}
	cmd.AddCommand(newMountEnableCmd(e, "auth"), newMountDisableCmd(e, "auth"), newMountListCmd(e, "auth"))
	return cmd
}
