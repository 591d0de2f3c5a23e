package e2e

import (
	"strings"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/servertest"
)

const smallBodyConfig = `storage:
  bolt:
    path: {{DIR}}/coffer.db
listener:
  address: {{ADDR}}
  max_request_size: 4096
  tls:
    disable: true
log:
  format: json
`

func TestBadInputBeforeInit(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Config: smallBodyConfig})
	u := p.Addr + "/v1/"
	cases := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"unseal before init", "PUT", "sys/unseal", `{"key":"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="}`, 400, "not initialized"},
		{"malformed json", "PUT", "sys/init", `{"secret_shares":`, 400, "failed to decode JSON input: unexpected EOF"},
		{"wrong type", "PUT", "sys/init", `{"secret_shares":"five","secret_threshold":3}`, 400, "secret_shares"},
		{"threshold above shares", "PUT", "sys/init", `{"secret_shares":2,"secret_threshold":3}`, 400, "secret_threshold must not be greater"},
		{"threshold one of many", "PUT", "sys/init", `{"secret_shares":3,"secret_threshold":1}`, 400, "greater than one"},
		{"zero shares", "PUT", "sys/init", `{"secret_shares":0,"secret_threshold":0}`, 400, "secret_shares must be at least 1"},
		{"pgp keys", "PUT", "sys/init", `{"secret_shares":1,"secret_threshold":1,"pgp_keys":["x"]}`, 400, "PGP"},
		{"oversized body", "PUT", "sys/init", `{"x":"` + strings.Repeat("a", 5000) + `"}`, 413, "too large"},
		{"sealed read", "GET", "secret/data/x", "", 503, "Vault is sealed"},
		{"dot segments", "GET", "secret/../sys/init", "", 400, "not allowed"},
		{"unknown method on health", "DELETE", "sys/health", "", 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawDo(t, tc.method, u+tc.path, "", tc.body, nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, body)
			}
			if tc.msg != "" && !strings.Contains(body, tc.msg) {
				t.Fatalf("body %s does not name the problem (%q)", body, tc.msg)
			}
		})
	}
	if status, body := rawDo(t, "GET", p.Addr+"/nope", "", "", nil); status != 404 || body != "{\"errors\":[]}\n" {
		t.Fatalf("path without /v1/: %d %q", status, body)
	}
	// None of that initialised anything.
	if status, body := rawDo(t, "GET", u+"sys/init", "", "", nil); status != 200 || !strings.Contains(body, `"initialized":false`) {
		t.Fatalf("init status after bad input: %d %s", status, body)
	}
	if status, _ := rawDo(t, "GET", u+"sys/health", "", "", nil); status != 501 {
		t.Fatalf("health uninitialised = %d, want 501", status)
	}
	if status, _ := rawDo(t, "GET", u+"sys/health?uninitcode=299", "", "", nil); status != 299 {
		t.Fatalf("health uninitcode override = %d, want 299", status)
	}
}

func TestBadUnsealInput(t *testing.T) {
	p := servertest.Start(t, servertest.Options{})
	other := servertest.Start(t, servertest.Options{})
	c, res := initServer(t, p, 5, 3)
	_, otherRes := initServer(t, other, 5, 3)
	ctx := t.Context()
	mustWrite(t, ctx, c, "sys/mounts/secret", map[string]any{"type": "kv"})
	mustWrite(t, ctx, c, "secret/data/keep", map[string]any{"data": map[string]any{"v": "1"}})
	if err := c.Sys().Seal(ctx); err != nil {
		t.Fatal(err)
	}
	u := p.Addr + "/v1/"

	// init twice
	status, body := rawDo(t, "PUT", u+"sys/init", "", `{"secret_shares":1,"secret_threshold":1}`, nil)
	if status != 400 || !strings.Contains(body, "already initialized") {
		t.Fatalf("init twice: %d %s", status, body)
	}
	// garbage and short keys
	for _, k := range []string{"not-a-key!!", "abcd", strings.Repeat("ab", 40)} {
		status, body = rawDo(t, "PUT", u+"sys/unseal", "", `{"key":"`+k+`"}`, nil)
		if status != 400 || !strings.Contains(body, "invalid key") {
			t.Fatalf("unseal %q: %d %s", k, status, body)
		}
	}
	// missing key
	if status, body = rawDo(t, "PUT", u+"sys/unseal", "", `{}`, nil); status != 400 {
		t.Fatalf("unseal without key: %d %s", status, body)
	}
	// the same share twice
	rawDo(t, "PUT", u+"sys/unseal", "", `{"key":"`+res.Keys[0]+`"}`, nil)
	status, body = rawDo(t, "PUT", u+"sys/unseal", "", `{"key":"`+res.KeysBase64[0]+`"}`, nil)
	if status != 400 || !strings.Contains(body, "already provided") {
		t.Fatalf("same share twice: %d %s", status, body)
	}
	// shares from another initialisation: combine fails, progress resets
	rawDo(t, "PUT", u+"sys/unseal", "", `{"key":"`+otherRes.Keys[1]+`"}`, nil)
	status, body = rawDo(t, "PUT", u+"sys/unseal", "", `{"key":"`+otherRes.Keys[2]+`"}`, nil)
	if status != 400 || !strings.Contains(body, "another initialisation") {
		t.Fatalf("foreign shares: %d %s", status, body)
	}
	st, _ := c.Sys().SealStatus(ctx)
	if !st.Sealed || st.Progress != 0 {
		t.Fatalf("after foreign shares: %+v", st)
	}
	// two clients unsealing at once, each with different shares
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rawDo(t, "PUT", u+"sys/unseal", "", `{"key":"`+res.Keys[i+1]+`"}`, nil)
		}()
	}
	wg.Wait()
	st, _ = c.Sys().SealStatus(ctx)
	if st.Sealed {
		t.Fatalf("three distinct shares from three clients did not unseal: %+v", st)
	}
	// nothing stored changed
	s, err := c.Logical().Read(ctx, "secret/data/keep", nil)
	if err != nil || s == nil {
		t.Fatalf("stored data after bad unseal input: %v", err)
	}
}

func TestBadRequestsWhileUnsealed(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Config: smallBodyConfig})
	c, res := initServer(t, p, 1, 1)
	mustWrite(t, t.Context(), c, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]string{"version": "2"}})
	u := p.Addr + "/v1/"
	tok := res.RootToken
	cases := []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"no token", "GET", "sys/mounts", "", "", 403, "permission denied"},
		{"unknown token", "GET", "sys/mounts", "s.nope", "", 403, "permission denied"},
		{"bearer token", "GET", "sys/key-status", "", "", 200, ""},
		{"no mount", "GET", "nosuchmount/foo", tok, "", 404, `no handler for route \"nosuchmount/foo\"`},
		{"unknown sys path", "GET", "sys/nope", tok, "", 404, "unsupported path"},
		{"list on data", "LIST", "secret/data/x", tok, "", 405, "unsupported operation"},
		{"unknown method", "TRACE", "sys/mounts", tok, "", 405, ""},
		{"patch without merge type", "PATCH", "secret/data/x", tok, `{"data":{}}`, 415, "merge-patch"},
		{"malformed json", "PUT", "secret/data/x", tok, `{"data":`, 400, "unexpected EOF"},
		{"oversized", "PUT", "secret/data/x", tok, `{"data":{"a":"` + strings.Repeat("x", 5000) + `"}}`, 413, "too large"},
		{"mount unknown type", "POST", "sys/mounts/foo", tok, `{"type":"nope"}`, 400, "plugin not found"},
		{"mount over sys", "POST", "sys/mounts/sys/x", tok, `{"type":"kv"}`, 400, "reserved"},
		{"mount dotdot", "POST", "sys/mounts/a/../b", tok, `{"type":"kv"}`, 400, ""},
		{"mount in use", "POST", "sys/mounts/secret", tok, `{"type":"kv"}`, 400, "already in use"},
		{"mount nested", "POST", "sys/mounts/secret/inner", tok, `{"type":"kv"}`, 400, "already in use"},
		{"kv v1", "POST", "sys/mounts/old", tok, `{"type":"kv","options":{"version":"1"}}`, 400, "version"},
		{"tune bad ttl", "POST", "sys/mounts/secret/tune", tok, `{"default_lease_ttl":"forever"}`, 400, "duration"},
		{"health sealedcode ignored when active", "GET", "sys/health?activecode=299", "", "", 299, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.name == "bearer token" {
				hdr["Authorization"] = "Bearer " + tok
			}
			if tc.method == "PATCH" {
				hdr["Content-Type"] = "application/json"
			}
			status, body := rawDo(t, tc.method, u+tc.path, tc.token, tc.body, hdr)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, body)
			}
			if tc.msg != "" && !strings.Contains(body, tc.msg) {
				t.Fatalf("body %s does not contain %q", body, tc.msg)
			}
		})
	}
	// tune, then read the tuned values back
	if status, body := rawDo(t, "POST", u+"sys/mounts/secret/tune", tok, `{"default_lease_ttl":"1h","max_lease_ttl":7200,"description":"tuned"}`, nil); status != 204 {
		t.Fatalf("tune: %d %s", status, body)
	}
	if status, body := rawDo(t, "GET", u+"sys/mounts/secret/tune", tok, "", nil); status != 200 || !strings.Contains(body, `"default_lease_ttl":3600`) || !strings.Contains(body, `"max_lease_ttl":7200`) {
		t.Fatalf("tune read: %d %s", status, body)
	}
	if status, body := rawDo(t, "GET", u+"secret/data/x", tok, "", map[string]string{"X-Vault-Wrap-TTL": "60s"}); status != 400 || !strings.Contains(body, "wrapping") {
		t.Fatalf("wrap ttl: %d %s", status, body)
	}
	// HEAD on health: status, no body.
	status, body := rawDo(t, "HEAD", u+"sys/health", "", "", nil)
	if status != 200 || body != "" {
		t.Fatalf("HEAD health = %d %q", status, body)
	}
	// mounts survived all of that
	m, err := c.Sys().ListMounts(t.Context())
	if err != nil || m["secret/"] == nil || m["foo/"] != nil || m["old/"] != nil {
		t.Fatalf("mounts after bad input: %v %v", m, err)
	}
}
