package kubernetes

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
)

func TestConfigValidationReportsEverything(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.do(core.OpWrite, "config", map[string]any{
		"kubernetes_ca_cert":                "not a cert",
		"pem_keys":                          []string{"not pem"},
		"validation":                        "magic",
		"oidc_discovery_url":                "ftp://x",
		"jwks_url":                          "https://x/jwks",
		"clock_skew_leeway":                 "1h",
		"use_annotations_as_alias_metadata": true,
		"unknown_thing":                     1,
	})
	for _, want := range []string{
		"kubernetes_host: required",
		"kubernetes_ca_cert: no PEM certificate found",
		"pem_keys: key 1: not PEM",
		`validation "magic": want "tokenreview" or "offline"`,
		`oidc_discovery_url: "ftp://x" is not an http(s) URL`,
		"oidc_discovery_url and jwks_url: set one, not both",
		"clock_skew_leeway: at most 10m",
		"use_annotations_as_alias_metadata: not supported",
		`unknown field "unknown_thing"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	wantErr(t, err, 400, "")

	_, err = h.do(core.OpWrite, "config", map[string]any{"kubernetes_host": "https://k8s", "validation": "offline"})
	wantErr(t, err, 400, `issuer: required with validation "offline"`)
}

func TestConfigReadWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.do(core.OpRead, "config", nil)
	wantErr(t, err, 404, "")

	c := newCluster(t)
	h.write("config", map[string]any{
		"kubernetes_host":      c.URL + "/",
		"kubernetes_ca_cert":   c.CAPEM,
		"token_reviewer_jwt":   "reviewer.jwt.value",
		"disable_local_ca_jwt": "true", // the CLI sends strings
		"pem_keys":             c.signer.PEM(t),
	})
	got := h.read("config")
	want := map[string]any{
		"kubernetes_host":                   c.URL,
		"kubernetes_ca_cert":                c.CAPEM,
		"pem_keys":                          []any{strings.TrimSpace(c.signer.PEM(t))},
		"issuer":                            "",
		"disable_iss_validation":            true,
		"disable_local_ca_jwt":              true,
		"token_reviewer_jwt_set":            true,
		"use_annotations_as_alias_metadata": false,
		"validation":                        "tokenreview",
		"oidc_discovery_url":                "",
		"jwks_url":                          "",
		"clock_skew_leeway":                 float64(0),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config read:\n got %v\nwant %v", got, want)
	}
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), "reviewer.jwt.value") {
		t.Fatal("config read leaks the reviewer JWT")
	}
	// The stored config keeps it, for TokenReview.
	rt, err := h.b.runtime(t.Context())
	if err != nil || rt.reviewer() != "reviewer.jwt.value" {
		t.Fatalf("runtime reviewer = %v", err)
	}
	// Redacted in every printed form.
	cfg := rt.cfg
	for _, s := range []string{cfg.ReviewerJWT.String(), formatV(cfg), formatPlusV(cfg)} {
		if strings.Contains(s, "reviewer.jwt.value") {
			t.Fatalf("config prints its reviewer JWT: %s", s)
		}
	}

	// A write replaces the config and resets the runtime.
	h.write("config", map[string]any{"kubernetes_host": c.URL})
	if got := h.read("config"); got["token_reviewer_jwt_set"] != false || got["kubernetes_ca_cert"] != "" {
		t.Fatalf("config after replace = %v", got)
	}
}

func TestRoleCRUDAndDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.do(core.OpList, "role", nil)
	wantErr(t, err, 404, "")
	_, err = h.do(core.OpRead, "role/eso", nil)
	wantErr(t, err, 404, "")

	// The body of vault-api.md 4.11.
	h.write("role/eso", map[string]any{
		"bound_service_account_names":      []string{"external-secrets"},
		"bound_service_account_namespaces": []string{"eso"},
		"token_policies":                   []string{"app-read"},
		"token_ttl":                        "1h",
		"audience":                         "vault",
	})
	want := map[string]any{
		"bound_service_account_names":              []any{"external-secrets"},
		"bound_service_account_namespaces":         []any{"eso"},
		"bound_service_account_namespace_selector": "",
		"audience":                "vault",
		"alias_name_source":       "serviceaccount_uid",
		"token_policies":          []any{"app-read"},
		"token_ttl":               float64(3600),
		"token_max_ttl":           float64(0),
		"token_explicit_max_ttl":  float64(0),
		"token_period":            float64(0),
		"token_num_uses":          float64(0),
		"token_bound_cidrs":       []any{},
		"token_no_default_policy": false,
		"token_type":              "default",
	}
	if got := h.read("role/eso"); !reflect.DeepEqual(got, want) {
		t.Fatalf("role read:\n got %v\nwant %v", got, want)
	}

	// An update changes only what it sends; legacy names still work and
	// are echoed.
	h.write("role/eso", map[string]any{"policies": "a,b", "token_max_ttl": 7200, "bound_service_account_names": "external-*"})
	got := h.read("role/eso")
	if !reflect.DeepEqual(got["token_policies"], []any{"a", "b"}) || !reflect.DeepEqual(got["policies"], []any{"a", "b"}) ||
		got["token_max_ttl"] != float64(7200) || got["token_ttl"] != float64(3600) || got["audience"] != "vault" ||
		!reflect.DeepEqual(got["bound_service_account_names"], []any{"external-*"}) {
		t.Fatalf("role after update = %v", got)
	}
	h.write("role/eso", map[string]any{"token_policies": []string{"c"}})
	if got := h.read("role/eso"); got["policies"] != nil {
		t.Fatalf("legacy policies still echoed after token_policies: %v", got)
	}

	h.write("role/other", map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "*"})
	resp, err := h.do(core.OpList, "role", nil)
	if err != nil || !reflect.DeepEqual(resp.Data, map[string]any{"keys": []string{"eso", "other"}}) {
		t.Fatalf("list = %+v, %v", resp, err)
	}
	if _, err := h.do(core.OpDelete, "role/eso", nil); err != nil {
		t.Fatal(err)
	}
	_, err = h.do(core.OpRead, "role/eso", nil)
	wantErr(t, err, 404, "")
}

func TestRoleValidationReportsEverything(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.do(core.OpWrite, "role/bad", map[string]any{
		"bound_service_account_namespaces":         []string{"*", "eso"},
		"bound_service_account_namespace_selector": "{\"matchLabels\": [1]}",
		"alias_name_source":                        "pod",
		"token_ttl":                                "2h",
		"token_max_ttl":                            "1h",
		"token_type":                               "batch",
		"token_bound_cidrs":                        []string{"10.0.0.0/33"},
		"token_policies":                           []string{"root"},
		"policies":                                 []string{"x"},
		"token_num_uses":                           "many",
	})
	for _, want := range []string{
		`"bound_service_account_names" can not be empty`,
		`bound_service_account_namespaces: can not mix "*" with values`,
		"bound_service_account_namespace_selector: want a LabelSelector",
		`alias_name_source "pod"`,
		"token_ttl (2h0m0s) must not be greater than token_max_ttl (1h0m0s)",
		`token_type "batch": coffer issues service tokens only`,
		`token_bound_cidrs: "10.0.0.0/33"`,
		`cannot grant the "root" policy`,
		"policies and token_policies are the same setting",
		"token_num_uses: want an integer",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	wantErr(t, err, 400, "")
	_, err = h.do(core.OpWrite, "role/bad", map[string]any{"bound_service_account_names": "a"})
	wantErr(t, err, 400, `"bound_service_account_namespaces" can not be empty if "bound_service_account_namespace_selector" is not set`)
	if _, err := h.do(core.OpRead, "role/bad", nil); err == nil {
		t.Fatal("a refused role was stored")
	}
}

func TestRoleSelector(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// YAML is accepted as well as JSON.
	h.write("role/sel", map[string]any{
		"bound_service_account_names":              "*",
		"bound_service_account_namespace_selector": "matchLabels:\n  team: a\nmatchExpressions:\n- {key: env, operator: In, values: [prod]}\n",
	})
	// Offline mounts cannot read namespace labels: refused at write.
	c := newCluster(t)
	h.write("config", c.offlineConfig())
	_, err := h.do(core.OpWrite, "role/sel2", map[string]any{
		"bound_service_account_names":              "*",
		"bound_service_account_namespace_selector": `{"matchLabels":{"team":"a"}}`,
	})
	wantErr(t, err, 400, `validates tokens offline (config validation "offline")`)
}

func TestSelectorMatches(t *testing.T) {
	t.Parallel()
	sel, err := parseSelector(`{"matchLabels":{"team":"a"},"matchExpressions":[
		{"key":"env","operator":"In","values":["prod","stage"]},
		{"key":"tier","operator":"NotIn","values":["free"]},
		{"key":"owner","operator":"Exists"},
		{"key":"legacy","operator":"DoesNotExist"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"team": "a", "env": "prod", "owner": "x"}
	cases := []struct {
		name   string
		change func(map[string]string)
		want   bool
	}{
		{"all hold", func(map[string]string) {}, true},
		{"wrong team", func(m map[string]string) { m["team"] = "b" }, false},
		{"env not in", func(m map[string]string) { m["env"] = "dev" }, false},
		{"tier in notin", func(m map[string]string) { m["tier"] = "free" }, false},
		{"no owner", func(m map[string]string) { delete(m, "owner") }, false},
		{"legacy exists", func(m map[string]string) { m["legacy"] = "" }, false},
	}
	for _, c := range cases {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		c.change(m)
		if got := sel.matches(m); got != c.want {
			t.Errorf("%s: matches = %v", c.name, got)
		}
	}
	for _, bad := range []string{`{"matchExpressions":[{"key":"a","operator":"In"}]}`, `{"matchExpressions":[{"key":"a","operator":"Near"}]}`,
		`{"matchLabels":{"a":"b"},"extra":1}`, "- a\n- b"} {
		if _, err := parseSelector(bad); err == nil {
			t.Errorf("parseSelector(%q) accepted", bad)
		}
	}
}

func formatV(c *config) string     { return fmt.Sprintf("%v %s", c, c.ReviewerJWT) }
func formatPlusV(c *config) string { return fmt.Sprintf("%+v %#v", c, c) }
