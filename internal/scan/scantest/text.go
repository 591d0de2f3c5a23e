package scantest

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Idents are identifier parts of typical code, including the words a
// secret scanner keys on, used the way real code uses them.
var idents = []string{"user", "config", "client", "server", "request", "response", "handler", "token", "session",
	"password", "secret", "cache", "store", "item", "value", "result", "buffer", "reader", "writer", "logger",
	"context", "options", "params", "auth", "key", "index", "count", "name", "path", "status", "error", "data",
	"credentials", "manager", "service", "account", "record", "entry", "header", "payload", "message", "event"}

func (g *Gen) ident() string {
	a := idents[g.rng.IntN(len(idents))]
	if g.rng.IntN(2) == 0 {
		return a
	}
	b := idents[g.rng.IntN(len(idents))]
	return a + strings.ToUpper(b[:1]) + b[1:]
}

func (g *Gen) hex(n int) string {
	const h = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = h[g.rng.IntN(16)]
	}
	return string(b)
}

// UUID returns a random UUID string.
func (g *Gen) UUID() string {
	h := g.hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// sourceLines are templates of typical code and config; %[1]s and %[2]s
// are identifiers, %[3]s a UUID, %[4]s a hex hash, %[5]d a number.
var sourceLines = []string{
	"func (s *%[1]sService) Get%[2]s(ctx context.Context, id string) (*%[2]s, error) {",
	"\t%[1]s, err := s.store.Load(ctx, %[2]s)",
	"\tif err != nil {",
	"\t\treturn nil, fmt.Errorf(\"load %[1]s: %%w\", err)",
	"\t}",
	"\tfor i := 0; i < len(%[1]s); i++ {",
	"\t\t%[1]s[i] = strings.TrimSpace(%[2]s[i])",
	"\ttoken := r.Header.Get(\"Authorization\")",
	"\tpassword := r.FormValue(\"password\")",
	"\tif token == \"\" || password == \"\" {",
	"\t\thttp.Error(w, \"missing credentials\", http.StatusUnauthorized)",
	"\tsecret, err := s.vault.Read(ctx, \"kv/data/%[1]s\")",
	"\tlog.Info(\"loaded %[1]s\", \"id\", \"%[3]s\", \"count\", %[5]d)",
	"// %[1]s returns the %[2]s for the given request. It never blocks.",
	"import (\n\t\"context\"\n\t\"fmt\"\n\t\"strings\"\n)",
	"def %[1]s(self, %[2]s, timeout=%[5]d):",
	"    \"\"\"Return the %[1]s of %[2]s.\"\"\"",
	"    token = self.session.get_token()",
	"    password = os.environ.get(\"DB_PASSWORD\")",
	"    return self.%[1]s.get(%[2]s, default=None)",
	"    if not %[1]s:\n        raise ValueError(\"%[2]s required\")",
	"const %[1]s = await fetch(`/api/v1/%[2]s/${id}`, { headers: { Authorization: `Bearer ${token}` } });",
	"export function %[1]s(%[2]s) { return %[2]s.map((x) => x.id).filter(Boolean); }",
	"  apiKey: process.env.API_KEY,",
	"  %[1]s: %[5]d,",
	"  name: %[1]s-%[2]s",
	"  image: registry.example.com/%[1]s@sha256:%[4]s",
	"      secretKeyRef:\n        name: %[1]s-secret\n        key: password",
	"  token: ${{ secrets.GITHUB_TOKEN }}",
	"  password: \"{{ .Values.%[1]s.password }}\"",
	"  request_id: %[3]s",
	"  checksum: sha256:%[4]s",
	"# %[1]s %[2]s: see https://docs.example.com/%[1]s for details",
	"| `%[1]s` | string | The %[2]s to use. Defaults to `%[5]d`. |",
	"SELECT id, %[1]s, %[2]s FROM %[1]s WHERE token_id = $1 AND status = 'active';",
	"<div class=\"%[1]s\" data-id=\"%[3]s\">{{ %[2]s }}</div>",
	"commit %[4]s",
	"    assert %[1]s == %[2]s, f\"expected {%[1]s}\"",
	"",
}

// TypicalSource writes about size bytes of source-like text with no
// secrets in it: code, config, docs, SQL, identifiers that mention
// tokens and passwords, UUIDs and hashes.
func (g *Gen) TypicalSource(w io.Writer, size int) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	for n < size {
		t := sourceLines[g.rng.IntN(len(sourceLines))]
		line := strings.NewReplacer("%[1]s", g.ident(), "%[2]s", g.ident(), "%[3]s", g.UUID(),
			"%[4]s", g.hex(40+24*g.rng.IntN(2)), "%[5]d", fmt.Sprint(g.rng.IntN(100000)), "%%", "%").Replace(t)
		k, err := bw.WriteString(line + "\n")
		if err != nil {
			return err
		}
		n += k
	}
	return bw.Flush()
}
