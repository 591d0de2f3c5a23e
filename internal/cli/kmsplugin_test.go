package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKMSPluginFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s.x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no key", []string{"-token-file", tok}, 2, "-key is required"},
		{"no auth", []string{"-key", "k"}, 2, "give -token-file FILE, or -auth-method"},
		{"both", []string{"-key", "k", "-token-file", tok, "-auth-method", "jwt"}, 2, "not both"},
		{"role without method", []string{"-key", "k", "-token-file", tok, "-role", "r"}, 2, "need -auth-method"},
		{"kubernetes without role", []string{"-key", "k", "-auth-method", "kubernetes"}, 2, "needs -role"},
		{"jwt without file", []string{"-key", "k", "-auth-method", "jwt", "-role", "r"}, 2, "needs -jwt-file"},
		{"unknown method", []string{"-key", "k", "-auth-method", "ldap", "-role", "r"}, 2, `"ldap": want kubernetes or jwt`},
		{"bad log level", []string{"-key", "k", "-token-file", tok, "-log-level", "loud"}, 2, "-log-level"},
		{"missing token file", []string{"-key", "k", "-token-file", filepath.Join(dir, "nope")}, 1, "read token file"},
		{"missing jwt file", []string{"-key", "k", "-auth-method", "jwt", "-role", "r", "-jwt-file", filepath.Join(dir, "nope")}, 1, "read JWT file"},
		{"slash in key", []string{"-key", "a/b", "-token-file", tok}, 1, `transit key name "a/b"`},
		{"no procs", []string{"-key", "k", "-token-file", tok, "-procs", "0"}, 2, "-procs 0: want at least 1"},
		{"arguments", []string{"-key", "k", "-token-file", tok, "extra"}, 2, "expected at most 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			args := append([]string{"kms-plugin", "-address", "http://127.0.0.1:1"}, tt.args...)
			code := Execute(t.Context(), args, strings.NewReader(""), &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errb.String(), tt.code, tt.want)
			}
		})
	}
}
