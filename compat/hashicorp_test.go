package compat

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/cofferhq/coffer/internal/servertest"
)

func vaultClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func statusOf(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// TestHashiCorpKVv2 drives the KV v2 engine through the HashiCorp client's
// KVv2 helpers against a real coffer process.
func TestHashiCorpKVv2(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	c := vaultClient(t, p.Addr, "root")
	ctx := t.Context()
	kv := c.KVv2("secret")

	s, err := kv.Put(ctx, "app/db", map[string]any{"username": "svc", "password": "s3cr3t"})
	if err != nil || s.VersionMetadata.Version != 1 {
		t.Fatalf("put v1: %+v %v", s, err)
	}
	if _, err = kv.Put(ctx, "app/db", map[string]any{"username": "svc", "password": "rotated"}, vault.WithCheckAndSet(1)); err != nil {
		t.Fatalf("put cas 1: %v", err)
	}
	if _, err = kv.Put(ctx, "app/db", map[string]any{"x": "y"}, vault.WithCheckAndSet(1)); statusOf(err) != 400 {
		t.Fatalf("stale cas: %v", err)
	}
	got, err := kv.Get(ctx, "app/db")
	if err != nil || got.Data["password"] != "rotated" || got.VersionMetadata.Version != 2 {
		t.Fatalf("get: %+v %v", got, err)
	}
	old, err := kv.GetVersion(ctx, "app/db", 1)
	if err != nil || old.Data["password"] != "s3cr3t" {
		t.Fatalf("get v1: %+v %v", old, err)
	}
	if _, err := kv.Patch(ctx, "app/db", map[string]any{"password": "patched"}); err != nil {
		t.Fatalf("patch: %v", err)
	}
	got, _ = kv.Get(ctx, "app/db")
	if got.Data["password"] != "patched" || got.Data["username"] != "svc" || got.VersionMetadata.Version != 3 {
		t.Fatalf("after patch: %+v", got.Data)
	}
	if err := kv.PutMetadata(ctx, "app/db", vault.KVMetadataPutInput{MaxVersions: 5, CustomMetadata: map[string]any{"owner": "team-a"}}); err != nil {
		t.Fatalf("put metadata: %v", err)
	}
	md, err := kv.GetMetadata(ctx, "app/db")
	if err != nil || md.MaxVersions != 5 || md.CurrentVersion != 3 || md.CustomMetadata["owner"] != "team-a" || len(md.Versions) != 3 {
		t.Fatalf("metadata: %+v %v", md, err)
	}
	if err := kv.Delete(ctx, "app/db"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// A deleted latest version is a 404 with the envelope: the client
	// returns the version metadata with no data.
	if d, err := kv.Get(ctx, "app/db"); err != nil || d.Data != nil || d.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("get of a deleted latest version: %+v %v", d, err)
	}
	if err := kv.Undelete(ctx, "app/db", []int{3}); err != nil {
		t.Fatalf("undelete: %v", err)
	}
	if got, err = kv.Get(ctx, "app/db"); err != nil || got.Data["password"] != "patched" {
		t.Fatalf("after undelete: %v %v", got, err)
	}
	if err := kv.Destroy(ctx, "app/db", []int{1}); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if d, err := kv.GetVersion(ctx, "app/db", 1); err != nil || d.Data != nil || !d.VersionMetadata.Destroyed {
		t.Fatalf("destroyed version: %+v %v", d, err)
	}
	if _, err := kv.Get(ctx, "nope"); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	// list, through the logical client as ESO does (GET ?list=true)
	if _, err := kv.Put(ctx, "app/api", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	l, err := c.Logical().ListWithContext(ctx, "secret/metadata/app")
	if err != nil || l == nil {
		t.Fatalf("list: %v %v", l, err)
	}
	keys := l.Data["keys"].([]any)
	if len(keys) != 2 || keys[0] != "api" || keys[1] != "db" {
		t.Fatalf("keys: %v", keys)
	}
	if err := kv.DeleteMetadata(ctx, "app/db"); err != nil {
		t.Fatalf("delete metadata: %v", err)
	}
	if _, err := kv.GetMetadata(ctx, "app/db"); err == nil {
		t.Fatal("metadata still readable after delete")
	}
	// the mount lookup the CLI and Vault Agent make
	m, err := c.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/secret/app/api")
	if err != nil || m.Data["type"] != "kv" || m.Data["path"] != "secret/" {
		t.Fatalf("ui mounts: %+v %v", m, err)
	}
	if opts, _ := m.Data["options"].(map[string]any); opts["version"] != "2" {
		t.Fatalf("ui mounts options: %v", m.Data["options"])
	}
}

// TestHashiCorpTokensAndPolicies covers token create/lookup/renew/revoke,
// policy CRUD, capabilities, write-only access and child revocation.
func TestHashiCorpTokensAndPolicies(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	root := vaultClient(t, p.Addr, "root")
	ctx := t.Context()
	sys := root.Sys()

	writeOnly := `path "secret/data/inbox/*" { capabilities = ["create", "update"] }`
	reader := `path "secret/data/app/*" { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["list"] }
path "auth/token/create" { capabilities = ["update"] }`
	if err := sys.PutPolicyWithContext(ctx, "write-only", writeOnly); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	if err := sys.PutPolicyWithContext(ctx, "app-read", reader); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	if err := sys.PutPolicyWithContext(ctx, "bad", `path "x" { capabilities = ["reed"] }`); statusOf(err) != 400 {
		t.Fatalf("bad policy: %v", err)
	}
	pols, err := sys.ListPoliciesWithContext(ctx)
	if err != nil || !slices.Contains(pols, "write-only") || !slices.Contains(pols, "root") || !slices.Contains(pols, "default") {
		t.Fatalf("list policies: %v %v", pols, err)
	}
	got, err := sys.GetPolicyWithContext(ctx, "write-only")
	if err != nil || got != writeOnly {
		t.Fatalf("get policy: %q %v", got, err)
	}

	// write-only: write gets version metadata back, read is 403
	wo, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"write-only"}, TTL: "1h"})
	if err != nil {
		t.Fatalf("create write-only token: %v", err)
	}
	woc := vaultClient(t, p.Addr, wo.Auth.ClientToken)
	s, err := woc.KVv2("secret").Put(ctx, "inbox/api-key", map[string]any{"key": "hunter2"})
	if err != nil || s.VersionMetadata == nil || s.VersionMetadata.Version != 1 {
		t.Fatalf("write-only put: %+v %v", s, err)
	}
	if _, err := woc.KVv2("secret").Put(ctx, "inbox/api-key", map[string]any{"key": "hunter3"}); err != nil {
		t.Fatalf("write-only update: %v", err)
	}
	if _, err := woc.KVv2("secret").Get(ctx, "inbox/api-key"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("write-only read: want 403, got %v", err)
	}
	if _, err := woc.KVv2("secret").GetMetadata(ctx, "inbox/api-key"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("write-only metadata read: want 403, got %v", err)
	}
	caps, err := woc.Sys().CapabilitiesSelfWithContext(ctx, "secret/data/inbox/api-key")
	if err != nil || !slices.Equal(caps, []string{"create", "update"}) {
		t.Fatalf("capabilities-self: %v %v", caps, err)
	}
	if v, _ := root.KVv2("secret").Get(ctx, "inbox/api-key"); v == nil || v.Data["key"] != "hunter3" {
		t.Fatalf("root read of the written value: %v", v)
	}

	// lookup-self shape as ESO reads it
	rc := vaultClient(t, p.Addr, "")
	tok, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"app-read"}, TTL: "1h", Metadata: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	rc.SetToken(tok.Auth.ClientToken)
	ls, err := rc.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Fatalf("lookup-self: %v", err)
	}
	if ttl, err := ls.TokenTTL(); err != nil || ttl <= 0 {
		t.Fatalf("ttl: %v %v", ttl, err)
	}
	if ls.Data["type"] != "service" || ls.Data["expire_time"] == nil {
		t.Fatalf("lookup-self data: %v", ls.Data)
	}
	if _, err := rc.Auth().Token().RenewSelfWithContext(ctx, 1800); err != nil {
		t.Fatalf("renew-self: %v", err)
	}
	// a child may not ask for policies its parent lacks
	if _, err := rc.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"write-only"}}); statusOf(err) != 400 {
		t.Fatalf("policy escalation: %v", err)
	}

	// child revocation at depth
	parent, _ := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"app-read"}})
	pc := vaultClient(t, p.Addr, parent.Auth.ClientToken)
	child, err := pc.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"app-read"}})
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	cc := vaultClient(t, p.Addr, child.Auth.ClientToken)
	grand, err := cc.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{})
	if err != nil {
		t.Fatalf("grandchild: %v", err)
	}
	if err := root.Auth().Token().RevokeTreeWithContext(ctx, parent.Auth.ClientToken); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	for _, tk := range []string{parent.Auth.ClientToken, child.Auth.ClientToken, grand.Auth.ClientToken} {
		if _, err := vaultClient(t, p.Addr, tk).Auth().Token().LookupSelfWithContext(ctx); statusOf(err) != 403 {
			t.Fatalf("revoked token still works: %v", err)
		}
	}
	if err := rc.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
		t.Fatalf("revoke-self: %v", err)
	}
	if _, err := rc.Auth().Token().LookupSelfWithContext(ctx); statusOf(err) != 403 {
		t.Fatalf("token works after revoke-self: %v", err)
	}
	// LIST answers only show what the caller may touch.
	if err := sys.PutPolicyWithContext(ctx, "lister", `path "secret/metadata/" { capabilities = ["list"] }
path "secret/data/app/*" { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["list"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, "app/one", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, "top-secret", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	lt, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"lister"}})
	if err != nil {
		t.Fatal(err)
	}
	lc := vaultClient(t, p.Addr, lt.Auth.ClientToken)
	l, err := lc.Logical().ListWithContext(ctx, "secret/metadata/")
	if err != nil || l == nil {
		t.Fatalf("list root: %v %v", l, err)
	}
	if keys := l.Data["keys"].([]any); len(keys) != 1 || keys[0] != "app/" {
		t.Fatalf("filtered root list = %v, want [app/]", keys)
	}
	l, err = lc.Logical().ListWithContext(ctx, "secret/metadata/app")
	if err != nil || l == nil || len(l.Data["keys"].([]any)) != 1 {
		t.Fatalf("list app/: %v %v", l, err)
	}
	if l, err := root.Logical().ListWithContext(ctx, "secret/metadata/"); err != nil || len(l.Data["keys"].([]any)) != 3 {
		t.Fatalf("root sees everything: %v %v", l, err)
	}
	if err := sys.DeletePolicyWithContext(ctx, "write-only"); err != nil {
		t.Fatalf("delete policy: %v", err)
	}
}
