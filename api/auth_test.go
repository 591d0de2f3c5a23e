package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	var seen []string // "path token body"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		b, _ := json.Marshal(body)
		seen = append(seen, r.URL.Path+" "+r.Header.Get("X-Vault-Token")+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/auth/kubernetes/login":
			_, _ = w.Write([]byte(`{"request_id":"1","auth":{"client_token":"s.new","lease_duration":3600,"renewable":true}}`))
		case "/v1/auth/token/renew-self":
			_, _ = w.Write([]byte(`{"request_id":"2","auth":{"client_token":"s.old","lease_duration":120,"renewable":true}}`))
		case "/v1/auth/token/lookup-self":
			_, _ = w.Write([]byte(`{"request_id":"3","data":{"ttl":59,"creation_ttl":60,"renewable":true,"policies":["default","kms"]}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[]}`))
		}
	}))
	defer srv.Close()
	c, err := NewClient(Config{Address: srv.URL, Token: "s.old"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	a, err := c.Auth().Login(ctx, "/kubernetes/", map[string]string{"role": "r", "jwt": "j"})
	if err != nil || a.ClientToken != "s.new" || a.LeaseDuration != 3600 {
		t.Fatalf("Login = %+v, %v", a, err)
	}
	if c.Token() != "s.old" {
		t.Error("Login changed the client's token")
	}
	if a, err := c.Auth().RenewSelf(ctx, 2*time.Minute); err != nil || a.LeaseDuration != 120 {
		t.Fatalf("RenewSelf = %+v, %v", a, err)
	}
	info, err := c.Auth().LookupSelf(ctx)
	if err != nil || info.TTL != 59*time.Second || info.CreationTTL != time.Minute || !info.Renewable || len(info.Policies) != 2 {
		t.Fatalf("LookupSelf = %+v, %v", info, err)
	}
	other := c.WithToken("s.other")
	if other.Token() != "s.other" || c.Token() != "s.old" {
		t.Error("WithToken changed the original client")
	}
	if _, err := c.Auth().Login(ctx, "nope", nil); !IsStatus(err, http.StatusNotFound) {
		t.Errorf("Login at a missing mount: %v", err)
	}

	want := []string{
		`/v1/auth/kubernetes/login  {"jwt":"j","role":"r"}`, // no token sent
		`/v1/auth/token/renew-self s.old {"increment":120}`,
		`/v1/auth/token/lookup-self s.old null`,
	}
	for i, w := range want {
		if seen[i] != w {
			t.Errorf("request %d = %q, want %q", i, seen[i], w)
		}
	}
}
