package e2e

import (
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/servertest"
)

func TestMetricsAndProbes(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	u := p.Addr
	ctx := t.Context()
	c := client(t, u, "root")
	mustWrite(t, ctx, c, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "m3tr1cs-secret"}})
	mustWrite(t, ctx, c, "secret/metadata/app/db", map[string]any{"rotation_period": "1s"})
	if _, err := c.Logical().Read(ctx, "secret/data/app/db", nil); err != nil {
		t.Fatal(err)
	}
	if status, _ := rawDo(t, "GET", u+"/v1/sys/metrics", "", "", nil); status != 403 {
		t.Fatalf("metrics without a token: %d", status)
	}
	status, body := rawDo(t, "GET", u+"/v1/sys/metrics?format=prometheus", "root", "", nil)
	if status != 200 {
		t.Fatalf("metrics: %d %s", status, body)
	}
	for _, want := range []string{
		`coffer_requests_total{code="200",mount="secret/",operation="read"} 1`,
		`coffer_request_duration_seconds_bucket{mount="secret/",operation="create"`,
		"coffer_sealed 0",
		"coffer_tokens 1",
		"coffer_barrier_key_term 1",
		"coffer_barrier_key_age_seconds",
		`coffer_kv_secrets{mount="secret/"} 1`,
		`coffer_kv_versions_expired{mount="secret/"} 0`,
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, "m3tr1cs-secret") || strings.Contains(body, "app/db") {
		t.Error("metrics carry a secret value or name")
	}
	if status, _ := rawDo(t, "GET", u+"/livez", "", "", nil); status != 200 {
		t.Fatalf("livez: %d", status)
	}
	if status, _ := rawDo(t, "GET", u+"/readyz", "", "", nil); status != 200 {
		t.Fatalf("readyz unsealed: %d", status)
	}
	if err := c.Sys().Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if status, _ := rawDo(t, "GET", u+"/readyz", "", "", nil); status != 503 {
		t.Fatalf("readyz sealed: %d", status)
	}
	if status, _ := rawDo(t, "GET", u+"/livez", "", "", nil); status != 200 {
		t.Fatalf("livez sealed: %d", status)
	}
}

func TestMetricsUnauthenticatedWhenConfigured(t *testing.T) {
	cfg := strings.Replace(servertest.DefaultConfig, "log:", "telemetry:\n  unauthenticated_metrics_access: true\nlog:", 1)
	p := servertest.Start(t, servertest.Options{Config: cfg})
	initServer(t, p, 1, 1)
	status, body := rawDo(t, "GET", p.Addr+"/v1/sys/metrics", "", "", nil)
	if status != 200 || !strings.Contains(body, "coffer_sealed 0") {
		t.Fatalf("unauthenticated metrics: %d %.200s", status, body)
	}
}
