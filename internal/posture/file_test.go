package posture_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
)

func loadPaths(t *testing.T, paths ...string) *posture.Snapshot {
	t.Helper()
	s, err := posture.LoadFiles(t.Context(), paths, posture.FileOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLoadFormats loads the scenario in every form kubectl and Helm write
// and expects the same snapshot from each.
func TestLoadFormats(t *testing.T) {
	t.Parallel()
	objs := posturetest.Scenario(now)
	dir := t.TempDir()
	write := func(name string, f func(*bytes.Buffer) error) string {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	list := write("list.yaml", func(b *bytes.Buffer) error { return posturetest.WriteList(b, objs...) })
	helm := write("helm.yaml", func(b *bytes.Buffer) error { return posturetest.WriteDocs(b, objs...) })
	jsonList := write("list.json", func(b *bytes.Buffer) error { return posturetest.WriteJSONList(b, objs...) })
	stream := write("stream.json", func(b *bytes.Buffer) error {
		for _, o := range objs {
			if err := json.NewEncoder(b).Encode(o); err != nil {
				return err
			}
		}
		return nil
	})
	array := write("array.json", func(b *bytes.Buffer) error { return json.NewEncoder(b).Encode(objs) })
	manifests := filepath.Join(dir, "manifests")
	for i, o := range objs {
		sub := filepath.Join(manifests, fmt.Sprintf("app%d", i%3))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("%02d.yml", i)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Ignored: other extensions and hidden directories.
	os.WriteFile(filepath.Join(manifests, "README.md"), []byte("kind: Secret\n"), 0o600)
	os.MkdirAll(filepath.Join(manifests, ".git"), 0o755)
	os.WriteFile(filepath.Join(manifests, ".git", "x.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: hidden}\n"), 0o600)

	want := loadPaths(t, list)
	if len(want.Problems) > 0 || want.Objects() < len(objs) {
		t.Fatalf("list: %d objects, problems %v", want.Objects(), want.Problems)
	}
	for _, p := range []string{helm, jsonList, stream, array, manifests} {
		got := loadPaths(t, p)
		got.Source = want.Source
		if len(got.Problems) > 0 {
			t.Errorf("%s: problems %v", filepath.Base(p), got.Problems)
		}
		if !sameSnapshot(t, got, want) {
			t.Errorf("%s: snapshot differs from the List's (%d vs %d objects)", filepath.Base(p), got.Objects(), want.Objects())
		}
	}
	stdin, err := posture.LoadFiles(t.Context(), []string{"-"}, posture.FileOptions{Now: fixedNow, Stdin: strings.NewReader(mustRead(t, list))})
	if err != nil || stdin.Objects() != want.Objects() {
		t.Errorf("stdin: %v, %d objects", err, stdin.Objects())
	}
}

// sameSnapshot compares snapshots by their JSON form, which is
// deterministic because snapshots are sorted.
func sameSnapshot(t testing.TB, a, b *posture.Snapshot) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadBadInput(t *testing.T) {
	t.Parallel()
	in := `apiVersion: v1
kind: Namespace
metadata: {name: good}
---
apiVersion: v1
kind: Secret
metadata: {name: broken
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: a}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: ConfigMap
metadata: {namespace: a}
---
- just
- a list
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: a}
spec: {containers: "not a list"}
---
kind: Secret
metadata: {name: no-version}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: List
  items:
  - apiVersion: v1
    kind: ServiceAccount
    metadata: {name: nested, namespace: a}
---
a: &a [x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b]
d: [*c, *c, *c, *c, *c, *c, *c, *c]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: last}
`
	s := loadPaths(t, writeFile(t, "bad.yaml", in))
	if len(s.Namespaces) != 1 || len(s.ServiceAccounts) != 2 {
		t.Errorf("good objects: %d namespaces, %d service accounts; want 1 and 2", len(s.Namespaces), len(s.ServiceAccounts))
	}
	if s.Skipped["Service"] != 1 || s.Skipped["Widget.example.com"] != 1 {
		t.Errorf("skipped = %v", s.Skipped)
	}
	var reasons []string
	for _, p := range s.Problems {
		reasons = append(reasons, p.Source+": "+p.Reason)
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"document 2 (line 5)", "ConfigMap without metadata.name", "not a Kubernetes object", "Pod:", "missing apiVersion or kind"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	// The last object, without a namespace, gets the default one.
	for _, sa := range s.ServiceAccounts {
		if want := map[string]string{"nested": "a", "last": "default"}[sa.Name]; sa.Namespace != want {
			t.Errorf("ServiceAccount %s in namespace %q, want %q", sa.Name, sa.Namespace, want)
		}
	}

	js := loadPaths(t, writeFile(t, "bad.json", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ok"}}, 42, {"kind":`))
	if len(js.Namespaces) != 1 || len(js.Problems) == 0 {
		t.Errorf("truncated JSON: %d namespaces, problems %v", len(js.Namespaces), js.Problems)
	}
	if _, err := posture.LoadFiles(t.Context(), []string{filepath.Join(t.TempDir(), "missing.yaml")}, posture.FileOptions{}); err == nil {
		t.Error("a missing file is not an error")
	}
}

// TestLoadKeepsNoSecretValues checks that Secret values, stringData and
// kubectl's last-applied copy never reach the snapshot, and that the
// public certificate does.
func TestLoadKeepsNoSecretValues(t *testing.T) {
	t.Parallel()
	tls := posturetest.TLSSecret("a", "tls", now.Add(24*time.Hour))
	s := posturetest.Secret("a", "db", "", map[string][]byte{"password": []byte("hunter2-hunter2")})
	s.StringData = map[string]string{"token": "s3cr3t-t0k3n"}
	s.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"password":"aHVudGVyMi1odW50ZXIy"}}`, "team": "x"}
	snap := load(t, tls, s)
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"hunter2", "aHVudGVyMi1odW50ZXIy", "s3cr3t", "PRIVATE KEY", string(tls.Data[corev1.TLSPrivateKeyKey])} {
		if bytes.Contains(b, []byte(leak)) {
			t.Errorf("snapshot holds %q", leak)
		}
	}
	var db corev1.Secret
	for _, x := range snap.Secrets {
		if x.Name == "db" {
			db = x
		}
	}
	if _, ok := db.Data["password"]; !ok {
		t.Error("key names are dropped")
	}
	if _, ok := db.Data["token"]; !ok {
		t.Error("stringData keys are dropped")
	}
	if db.Annotations["team"] != "x" {
		t.Error("other annotations are dropped")
	}
	for _, x := range snap.Secrets {
		if x.Name == "tls" && !bytes.Equal(x.Data[corev1.TLSCertKey], tls.Data[corev1.TLSCertKey]) {
			t.Error("tls.crt is not kept")
		}
	}
}

func TestBuiltinRoles(t *testing.T) {
	t.Parallel()
	objs := []posturetest.Object{posturetest.RoleBinding("a", "edit", "ClusterRole", "edit", posturetest.User("alice"))}
	s := load(t, objs...)
	if s.BuiltinRoles < 50 {
		t.Errorf("%d default roles added", s.BuiltinRoles)
	}
	rep := analyze(t, s)
	if len(rep.RBACProblems) > 0 {
		t.Errorf("problems: %v", rep.RBACProblems)
	}
	// edit aggregates system:aggregate-to-edit, which creates pods.
	if _, ok := findAccess(rep.Access, "all Secrets in namespace a"); !ok {
		t.Error("edit does not reach the Secrets of its namespace")
	}
	bare := loadWith(t, posture.FileOptions{NoBuiltinRoles: true}, objs...)
	if bare.BuiltinRoles != 0 || len(bare.ClusterRoles) != 0 {
		t.Errorf("NoBuiltinRoles: %d added", bare.BuiltinRoles)
	}
}

func TestEncryptionConfig(t *testing.T) {
	t.Parallel()
	c, err := posture.ParseEncryptionConfig([]byte(encryptionConfig(kmsV2First)), "enc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.ForSecrets()
	if !ok || len(p) != 2 || p[0].Kind != "kms" || p[0].APIVersion != "v2" || p[0].Name != "coffer" {
		t.Errorf("providers = %+v", p)
	}
	c, err = posture.ParseEncryptionConfig([]byte(encryptionConfig(aescbcFirst)), "enc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(c); bytes.Contains(b, []byte("c2VjcmV0")) {
		t.Error("the parsed config holds key material")
	}
	for _, bad := range []string{"kind: Pod\n", "kind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{rot13: {}}]}]\n", ": :"} {
		if _, err := posture.ParseEncryptionConfig([]byte(bad), "bad.yaml"); err == nil {
			t.Errorf("ParseEncryptionConfig(%q) accepted", bad)
		}
	}
	a, err := posture.ParseAPIServerManifest([]byte(apiserverManifest("--encryption-provider-config", "/etc/enc.yaml", "--token-auth-file=/etc/tokens.csv")), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a.Flags["encryption-provider-config"] != "/etc/enc.yaml" || a.Flags["authorization-mode"] != "Node,RBAC" {
		t.Errorf("flags = %v", a.Flags)
	}
}
