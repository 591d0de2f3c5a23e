package cli

import "github.com/spf13/cobra"

// extraCommands lists the command groups beyond the server basics.
func extraCommands(e *env) []*cobra.Command {
	return nil
}
