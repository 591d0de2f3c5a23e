package e2e

import (
	"net/url"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/servertest"
)

// TestKVAndPolicyBadInput sends the bad-input catalogue through
// HTTP and checks each answer is a 4xx naming the problem and that
// nothing stored changed.
func TestKVAndPolicyBadInput(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	u := p.Addr + "/v1/"
	ctx := t.Context()
	c := client(t, p.Addr, "root")
	mustWrite(t, ctx, c, "secret/data/keep", map[string]any{"data": map[string]any{"v": "1"}})
	mustWrite(t, ctx, c, "sys/policies/acl/small", map[string]any{"policy": `path "secret/data/small/*" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }`})
	sec, err := c.Logical().Write(ctx, "auth/token/create", map[string]any{"policies": []string{"small"}})
	if err != nil {
		t.Fatal(err)
	}
	small := sec.Auth.ClientToken
	long := strings.Repeat("a/", 10000) + "x"
	cases := []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"data not an object", "PUT", "secret/data/x", "root", `{"data":"str"}`, 400, `field \"data\"`},
		{"no data", "PUT", "secret/data/x", "root", `{}`, 400, "no data provided"},
		{"cas on a missing key", "PUT", "secret/data/missing", "root", `{"data":{"a":"b"},"options":{"cas":3}}`, 400, "check-and-set parameter did not match"},
		{"cas wrong type", "PUT", "secret/data/x", "root", `{"data":{"a":"b"},"options":{"cas":"x"}}`, 400, "check-and-set"},
		{"negative max_versions", "POST", "secret/metadata/x", "root", `{"max_versions":-1}`, 400, "max_versions"},
		{"bad duration", "POST", "secret/metadata/x", "root", `{"delete_version_after":"soon"}`, 400, "delete_version_after"},
		{"dot-dot in key", "GET", "secret/data/a/../keep", "root", "", 400, "not allowed"},
		{"empty segment", "PUT", "secret/data/a//b", "root", `{"data":{"a":"b"}}`, 400, "empty"},
		{"NUL byte", "PUT", "secret/data/a" + url.PathEscape("\x00") + "b", "root", `{"data":{"a":"b"}}`, 400, "NUL"},
		{"10,000 segments", "PUT", "secret/data/" + long, "root", `{"data":{"a":"b"}}`, 400, ""},
		{"value over the limit", "PUT", "secret/data/big", "root", `{"data":{"a":"` + strings.Repeat("x", 1<<20+10) + `"}}`, 413, ""},
		{"unknown capability", "PUT", "sys/policies/acl/bad", "root", `{"policy":"path \"x\" { capabilities = [\"reed\"] }"}`, 400, `failed to parse policy: path \"x\": invalid capability \"reed\"`},
		{"bad glob", "PUT", "sys/policies/acl/bad", "root", `{"policy":"path \"x*y\" { capabilities = [\"read\"] }"}`, 400, "failed to parse policy"},
		{"root policy", "PUT", "sys/policies/acl/root", "root", `{"policy":"path \"x\" { capabilities = [\"read\"] }"}`, 400, "root"},
		{"policies the parent lacks", "POST", "auth/token/create", small, `{"policies":["admin"]}`, 400, "subset"},
		{"negative num_uses", "POST", "auth/token/create", "root", `{"num_uses":-1}`, 400, "num_uses"},
		{"bad ttl", "POST", "auth/token/create", "root", `{"ttl":"forever"}`, 400, "duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawDo(t, tc.method, u+tc.path, tc.token, tc.body, nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %.300s", status, tc.status, body)
			}
			if tc.msg != "" && !strings.Contains(body, tc.msg) {
				t.Fatalf("body %.300s does not name the problem (%q)", body, tc.msg)
			}
		})
	}
	// Nothing changed: keep is still version 1; none of the bad keys exist;
	// no policy named bad.
	s, err := c.Logical().Read(ctx, "secret/metadata/keep", nil)
	if err != nil || s == nil || s.Data["current_version"].(interface{ String() string }).String() != "1" {
		t.Fatalf("keep metadata: %v %v", s, err)
	}
	for _, k := range []string{"x", "missing", "big", "a"} {
		if s, _ := c.Logical().Read(ctx, "secret/metadata/"+k, nil); s != nil {
			t.Errorf("bad input created %s", k)
		}
	}
	if s, _ := c.Logical().Read(ctx, "sys/policies/acl/bad", nil); s != nil {
		t.Error("a bad policy was stored")
	}
}
