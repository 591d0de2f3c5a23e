package cli

import "github.com/spf13/cobra"

// extraCommands lists the command groups beyond the server basics.
func extraCommands(e *env) []*cobra.Command {
	return append(newLogicalCmds(e),
		newKVCmd(e),
		newTransitCmd(e),
		newTokenCmd(e),
		newPolicyCmd(e),
		newLoginCmd(e),
		newAuthCmd(e),
		newBenchCmd(e),
		newScanCmd(),
		newPostureCmd(e),
		newAuditCmd(e),
		newKMSPluginCmd(e),
	)
}
