package kubernetes

import (
	"encoding/json"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
)

// BenchmarkLoginOffline runs the login handler in offline mode (RS256
// signature check with a cached JWKS, role from in-memory storage) in
// parallel, as concurrent clients would.
func BenchmarkLoginOffline(b *testing.B) {
	h := newHarness(b)
	c := newCluster(b)
	h.write("config", c.offlineConfig())
	h.write("role/eso", map[string]any{"bound_service_account_names": "external-secrets",
		"bound_service_account_namespaces": "eso", "audience": "vault", "token_policies": "app-read"})
	body, _ := json.Marshal(map[string]string{"role": "eso",
		"jwt": c.token(b, sa{ns: "eso", name: "external-secrets", aud: []string{"vault"}})})
	rt, params, err := core.MatchRoute(h.Backend.Routes(), "login")
	if err != nil {
		b.Fatal(err)
	}
	login := rt.Handlers[core.OpUpdate]
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := login(ctx, &core.Request{Operation: core.OpUpdate, Path: "auth/kubernetes/login", RoutePath: "login",
				MountPath: "auth/kubernetes/", Params: params, Body: body, RemoteAddr: "10.0.0.1:1"})
			if err != nil || resp.Login == nil {
				b.Fatalf("login: %v", err)
			}
		}
	})
}
