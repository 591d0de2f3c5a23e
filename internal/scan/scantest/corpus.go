package scantest

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cofferhq/coffer/internal/scan/rule"
)

// Planted is a secret the corpus put somewhere, and where a scanner should
// report it.
type Planted struct {
	RuleID, Family string
	File           string // relative to the corpus root, slash-separated
	Line           int
	Secret         string
}

// fileKinds are the file types secrets get planted in: a name and a
// template with one %s for a single-line sample.
var fileKinds = []struct {
	ext, tmpl string
}{
	{".go", "\tsetting := `%s`\n"},
	{".go", "\t// %s\n"},
	{".py", "SETTING = '''%s'''\n"},
	{".py", "# %s\n"},
	{".js", "const setting = `%s`;\n"},
	{".ts", "  /* %s */\n"},
	{".env", "%s\n"},
	{".properties", "%s\n"},
	{".yaml", "  setting: |\n    %s\n"},
	{".tf", "  # %s\n"},
	{".sh", "# %s\n"},
	{".json", "  \"note\": \"see below\",\n%s\n"},
	{".xml", "  <!-- %s -->\n"},
	{".md", "Use the following: %s\n"},
	{".java", "    // %s\n"},
	{".rb", "  # %s\n"},
	{".toml", "# %s\n"},
	{".ini", "; %s\n"},
	{".cfg", "%s\n"},
	{".txt", "%s\n"},
}

// multiKinds are templates for multi-line samples (private keys).
var multiKinds = []struct {
	ext, tmpl string
}{
	{".pem", "%s\n"},
	{".key", "%s\n"},
	{".go", "var key = `%s`\n"},
	{".py", "KEY = \"\"\"%s\"\"\"\n"},
	{".yaml", "key: |\n%s\n"},
	{".sh", "cat > id <<'EOF'\n%s\nEOF\n"},
}

// Corpus writes the labelled corpus under dir: for every content rule,
// perRule samples planted in files of varied types among typical source
// text, the same credentials in Kubernetes Secret manifests (data,
// stringData, List and multi-document files), a PKCS#12 file, and the
// hard negatives of Negatives. It returns what it planted.
func (g *Gen) Corpus(dir string, rules []rule.Rule, perRule int) ([]Planted, error) {
	var planted []Planted
	var k8s []Sample
	n := 0
	for _, r := range rules {
		if r.Target == rule.TargetPath {
			continue
		}
		if r.Target == rule.TargetSecretEntry {
			continue
		}
		for v := range perRule {
			s, err := g.Sample(r, v)
			if err != nil {
				return nil, err
			}
			n++
			name, content, line := g.plant(s, n)
			if err := writeFile(dir, name, content); err != nil {
				return nil, err
			}
			planted = append(planted, Planted{RuleID: r.ID, Family: r.Family, File: name, Line: line, Secret: s.Secret})
			if v == 0 && !s.MultiLine && r.Family != "generic" {
				if r.Regex != "" {
					// A token or URL rule: the value is the whole match.
					s.Secret = s.Text
				}
				k8s = append(k8s, s)
			}
		}
	}
	p, err := g.manifests(dir, k8s)
	if err != nil {
		return nil, err
	}
	planted = append(planted, p...)
	if err := writeFile(dir, "certs/client.p12", string(g.PKCS12())); err != nil {
		return nil, err
	}
	planted = append(planted, Planted{RuleID: "pkcs12-file", Family: "private-key", File: "certs/client.p12", Line: 1})
	return planted, g.Negatives(filepath.Join(dir, "negatives"))
}

func writeFile(dir, name, content string) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// plant embeds a sample in a file of some type between typical lines and
// returns the file name, content and the sample's line.
func (g *Gen) plant(s Sample, n int) (string, string, int) {
	var pre, post strings.Builder
	_ = g.TypicalSource(&pre, 200+g.rng.IntN(2000))
	_ = g.TypicalSource(&post, 200+g.rng.IntN(2000))
	var ext, body string
	text := s.Text
	if s.MultiLine {
		k := multiKinds[n%len(multiKinds)]
		if k.ext == ".yaml" {
			text = "  " + strings.ReplaceAll(text, "\n", "\n  ")
		}
		ext, body = k.ext, fmt.Sprintf(k.tmpl, text)
		if k.ext == ".pem" || k.ext == ".key" {
			pre.Reset()
			post.Reset()
		}
	} else {
		k := fileKinds[n%len(fileKinds)]
		ext, body = k.ext, fmt.Sprintf(k.tmpl, s.Text)
	}
	idx := strings.Index(body, text)
	line := strings.Count(pre.String(), "\n") + strings.Count(body[:idx], "\n") + 1
	name := fmt.Sprintf("%s/%s-%d%s", s.Family, s.RuleID, n, ext)
	return name, pre.String() + body + post.String(), line
}

// manifests writes Kubernetes Secrets holding the samples' secrets, in
// the shapes a repository or a cluster dump has them.
func (g *Gen) manifests(dir string, samples []Sample) ([]Planted, error) {
	var planted []Planted
	var multi, list strings.Builder
	multi.WriteString("# Source: app/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 2\n")
	list.WriteString("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n")
	lines := strings.Count(multi.String(), "\n")
	listLines := 4
	first := true
	for i, s := range samples {
		key := strings.ReplaceAll(s.RuleID, "-", "_")
		switch i % 3 {
		case 0: // data, base64, in a multi-document file
			doc := fmt.Sprintf("---\n# Source: app/templates/secret-%d.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s%d\n  namespace: prod\ntype: Opaque\ndata:\n  %s: %s\n",
				i, i, key, base64.StdEncoding.EncodeToString([]byte(s.Secret)))
			planted = append(planted, Planted{RuleID: s.RuleID, Family: s.Family, File: "k8s/helm-output.yaml", Line: lines + 10, Secret: s.Secret})
			multi.WriteString(doc)
			lines += strings.Count(doc, "\n")
		case 1: // stringData in a file of its own
			doc := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s%d\nstringData:\n  %s: '%s'\n", i, key, s.Secret)
			name := fmt.Sprintf("k8s/secret-%d.yml", i)
			if err := writeFile(dir, name, doc); err != nil {
				return nil, err
			}
			planted = append(planted, Planted{RuleID: s.RuleID, Family: s.Family, File: name, Line: 6, Secret: s.Secret})
		case 2: // kubectl get secrets -o json
			if !first {
				list.WriteString(",\n")
				listLines++
			}
			first = false
			item := fmt.Sprintf("    {\n      \"apiVersion\": \"v1\",\n      \"kind\": \"Secret\",\n      \"metadata\": {\"name\": \"s%d\", \"namespace\": \"default\"},\n      \"data\": {\n        \"%s\": \"%s\"\n      }\n    }",
				i, key, base64.StdEncoding.EncodeToString([]byte(s.Secret)))
			planted = append(planted, Planted{RuleID: s.RuleID, Family: s.Family, File: "k8s/cluster-dump.json", Line: listLines + 6, Secret: s.Secret})
			list.WriteString(item)
			listLines += strings.Count(item, "\n")
		}
	}
	list.WriteString("\n  ]\n}\n")
	if err := writeFile(dir, "k8s/helm-output.yaml", multi.String()); err != nil {
		return nil, err
	}
	return planted, writeFile(dir, "k8s/cluster-dump.json", list.String())
}
