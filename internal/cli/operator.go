package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cofferhq/coffer/api"
)

func newStatusCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the server's seal status",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			st, err := c.Sys().SealStatus(cmd.Context())
			if err != nil {
				return err
			}
			return e.printSealStatus(st)
		},
	}
}

func (e *env) printSealStatus(st *api.SealStatusResponse) error {
	rows := []row{
		{"Seal Type", st.Type},
		{"Initialized", st.Initialized},
		{"Sealed", st.Sealed},
		{"Total Shares", st.N},
		{"Threshold", st.T},
	}
	if st.Sealed && st.Initialized {
		rows = append(rows, row{"Unseal Progress", fmt.Sprintf("%d/%d", st.Progress, st.T)}, row{"Unseal Nonce", st.Nonce})
	}
	rows = append(rows, row{"Version", st.Version}, row{"Storage Type", st.StorageType})
	if st.ClusterName != "" {
		rows = append(rows, row{"Cluster Name", st.ClusterName}, row{"Cluster ID", st.ClusterID})
	}
	return e.print(st, rows)
}

func newOperatorCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "operator", Short: "Initialise, unseal, seal and rotate the server"}
	cmd.AddCommand(newInitCmd(e), newUnsealCmd(e), newSealCmd(e), newRotateCmd(e), newKeyStatusCmd(e))
	return cmd
}

func newInitCmd(e *env) *cobra.Command {
	var shares, threshold int
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Initialise a new server and print its unseal key shares and root token",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if shares < 1 || shares > 255 {
				return usagef("-key-shares must be between 1 and 255")
			}
			if threshold < 1 || threshold > shares {
				return usagef("-key-threshold must be between 1 and -key-shares")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			res, err := c.Sys().Init(cmd.Context(), api.InitRequest{SecretShares: shares, SecretThreshold: threshold})
			if err != nil {
				return err
			}
			if e.outFormat() != "table" {
				return e.print(res, nil)
			}
			for i, k := range res.KeysBase64 {
				fmt.Fprintf(e.stdout, "Unseal Key %d: %s\n", i+1, k)
			}
			fmt.Fprintf(e.stdout, "\nInitial Root Token: %s\n\n", res.RootToken)
			fmt.Fprintf(e.stdout, "The server is initialised with %d key shares and a threshold of %d.\n"+
				"It is sealed: after every restart, unseal it with 'coffer operator unseal' and any %d of the shares.\n"+
				"Keep the shares apart; the server never shows them again.\n", shares, threshold, threshold)
			return nil
		},
	}
	cmd.Flags().IntVar(&shares, "key-shares", 5, "number of unseal key shares")
	cmd.Flags().IntVar(&threshold, "key-threshold", 3, "number of shares needed to unseal")
	return cmd
}

func newUnsealCmd(e *env) *cobra.Command {
	var reset bool
	cmd := &cobra.Command{
		Use:   "unseal [KEY]",
		Short: "Submit one unseal key share (prompted for without echo when not given)",
		Args:  maxArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if reset {
				st, err := c.Sys().UnsealReset(cmd.Context())
				if err != nil {
					return err
				}
				return e.printSealStatus(st)
			}
			var key string
			if len(args) == 1 && args[0] != "-" {
				key = args[0]
			} else {
				if key, err = e.readSecret("Unseal Key (will be hidden): "); err != nil {
					return err
				}
			}
			st, err := c.Sys().Unseal(cmd.Context(), key)
			if err != nil {
				return err
			}
			return e.printSealStatus(st)
		},
	}
	cmd.Flags().BoolVar(&reset, "reset", false, "discard the shares submitted so far")
	return cmd
}

// readSecret prompts without echo on a terminal, else reads one line.
func (e *env) readSecret(prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil {
			return "", fmt.Errorf("no key given on the command line or standard input")
		}
		return "", fmt.Errorf("empty key")
	}
	return line, nil
}

func newSealCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "seal",
		Short: "Seal the server (needs a root token)",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.Sys().Seal(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(e.stderr, "Success! The server is sealed.")
			return nil
		},
	}
}

func newRotateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Add a new barrier key term; older entries are re-encrypted in the background",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.Sys().Rotate(cmd.Context()); err != nil {
				return err
			}
			s, err := c.Sys().KeyStatus(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Success! Rotated the barrier key; new writes use term %v.\n", s.Data["term"])
			return nil
		},
	}
}

func newKeyStatusCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "key-status",
		Short: "Show the active barrier key term, its install time and its encryption count",
		Args:  maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Sys().KeyStatus(cmd.Context())
			if err != nil {
				return err
			}
			return e.print(s.Data, []row{{"Key Term", s.Data["term"]}, {"Install Time", s.Data["install_time"]}, {"Encryption Count", s.Data["encryptions"]}})
		},
	}
}
