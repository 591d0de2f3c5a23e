package jwt

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/auth/authtest"
	"github.com/cofferhq/coffer/internal/auth/jwtverify/jwtverifytest"
	"github.com/cofferhq/coffer/internal/core"
)

func TestConfigValidationReportsEverything(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.Do(core.OpWrite, "config", map[string]any{
		"jwks_url":               "ftp://keys",
		"jwt_validation_pubkeys": []string{"not pem"},
		"jwt_supported_algs":     []string{"RS256", "none", "HS256"},
		"oidc_discovery_ca_pem":  "junk",
		"oidc_client_id":         "coffer",
		"provider_config":        map[string]any{"provider": "azure"},
		"bogus":                  true,
	})
	for _, want := range []string{
		"exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set",
		"jwt_validation_pubkeys: key 1: not PEM",
		`jwks_url: "ftp://keys" is not an http(s) URL`,
		"oidc_discovery_ca_pem: only used with oidc_discovery_url",
		"oidc_discovery_ca_pem: no PEM certificate found",
		`jwt_supported_algs: unsupported signing algorithm "none" (unsigned tokens are never accepted), "HS256" (shared-secret`,
		"oidc_client_id: the OIDC browser login is not supported",
		"provider_config: not supported",
		`unknown field "bogus"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	authtest.WantErr(t, err, 400, "")
	_, err = h.Do(core.OpWrite, "config", map[string]any{})
	authtest.WantErr(t, err, 400, "exactly one of")
}

func TestConfigWriteChecksTheSource(t *testing.T) {
	t.Parallel()
	s := jwtverifytest.NewRSA(t, "k")
	iss := jwtverifytest.NewIssuer(t, s)
	h := newHarness(t)
	// Without the CA the TLS handshake fails.
	_, err := h.Do(core.OpWrite, "config", map[string]any{"oidc_discovery_url": iss.URL})
	authtest.WantErr(t, err, 400, "error checking OIDC discovery URL")
	// The discovery document must name the URL as its issuer.
	iss.SetIssuerName("https://elsewhere.example")
	_, err = h.Do(core.OpWrite, "config", map[string]any{"oidc_discovery_url": iss.URL, "oidc_discovery_ca_pem": iss.CAPEM})
	authtest.WantErr(t, err, 400, `names issuer "https://elsewhere.example"`)
	_, err = h.Do(core.OpWrite, "config", map[string]any{"jwks_url": iss.URL + "/missing", "jwks_ca_pem": iss.CAPEM})
	authtest.WantErr(t, err, 400, "error checking jwks URL")
	if _, err := h.Do(core.OpRead, "config", nil); err == nil {
		t.Fatal("a refused config was stored")
	}

	h.Write("config", map[string]any{"jwks_url": iss.URL + "/jwks", "jwks_ca_pem": iss.CAPEM, "bound_issuer": "https://ci.example", "default_role": "r"})
	got := h.Read("config")
	want := map[string]any{
		"oidc_discovery_url": "", "oidc_discovery_ca_pem": "", "oidc_client_id": "", "oidc_response_mode": "",
		"oidc_response_types": []any{}, "jwks_url": iss.URL + "/jwks", "jwks_ca_pem": iss.CAPEM, "jwks_pairs": []any{},
		"jwt_validation_pubkeys": []any{}, "jwt_supported_algs": []any{}, "bound_issuer": "https://ci.example",
		"default_role": "r", "namespace_in_state": false, "provider_config": map[string]any{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config read:\n got %v\nwant %v", got, want)
	}
}

func TestRoleCRUDAndDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.Do(core.OpList, "role", nil)
	authtest.WantErr(t, err, 404, "")
	h.Write("role/ci", map[string]any{"user_claim": "sub", "bound_audiences": "https://coffer.example",
		"bound_claims": `{"repository":["acme/web","acme/api"],"run_attempt":1}`, "token_policies": "ci"})
	want := map[string]any{
		"role_type": "jwt", "bound_audiences": []any{"https://coffer.example"}, "bound_subject": "",
		"bound_claims":      map[string]any{"repository": []any{"acme/web", "acme/api"}, "run_attempt": float64(1)},
		"bound_claims_type": "string", "claim_mappings": nil, "user_claim": "sub", "user_claim_json_pointer": false,
		"groups_claim": "", "clock_skew_leeway": float64(60), "expiration_leeway": float64(150), "not_before_leeway": float64(150),
		"allowed_redirect_uris": []any{}, "oidc_scopes": []any{}, "verbose_oidc_logging": false, "max_age": float64(0),
		"token_policies": []any{"ci"}, "token_ttl": float64(0), "token_max_ttl": float64(0), "token_explicit_max_ttl": float64(0),
		"token_period": float64(0), "token_num_uses": float64(0), "token_bound_cidrs": []any{},
		"token_no_default_policy": false, "token_type": "default",
	}
	if got := h.Read("role/ci"); !reflect.DeepEqual(got, want) {
		t.Fatalf("role read:\n got %v\nwant %v", got, want)
	}
	h.Write("role/ci", map[string]any{"bound_subject": "repo:acme/web:ref:refs/heads/main", "clock_skew_leeway": 0})
	got := h.Read("role/ci")
	if got["bound_subject"] != "repo:acme/web:ref:refs/heads/main" || got["user_claim"] != "sub" || got["clock_skew_leeway"] != float64(60) {
		t.Fatalf("role after update: %v", got)
	}
	h.Write("role/other", map[string]any{"user_claim": "sub", "bound_subject": "x"})
	resp, err := h.Do(core.OpList, "role", nil)
	if err != nil || !reflect.DeepEqual(resp.Data, map[string]any{"keys": []string{"ci", "other"}}) {
		t.Fatalf("list = %+v, %v", resp, err)
	}
	if _, err := h.Do(core.OpDelete, "role/ci", nil); err != nil {
		t.Fatal(err)
	}
	_, err = h.Do(core.OpRead, "role/ci", nil)
	authtest.WantErr(t, err, 404, "")
}

func TestRoleValidationReportsEverything(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.Do(core.OpWrite, "role/bad", map[string]any{
		"role_type":             "oidc",
		"bound_claims_type":     "regex",
		"bound_claims":          map[string]any{"a": map[string]any{"x": 1}},
		"claim_mappings":        map[string]string{"email": "role", "x": "k", "y": "k"},
		"allowed_redirect_uris": "https://x/cb",
		"expiration_leeway":     "2h",
		"token_type":            "batch",
	})
	for _, want := range []string{
		`role_type "oidc": the OIDC browser login is not supported`,
		"a user claim must be defined on the role",
		"invalid 'bound_claims_type': \"regex\"",
		`bound_claims["a"]: want a string, number, boolean or a list of them`,
		`metadata key "role" is reserved`,
		`multiple keys are mapped to metadata key "k"`,
		"allowed_redirect_uris: only used by the OIDC browser login",
		"expiration_leeway: at most 1h",
		`token_type "batch"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	_, err = h.Do(core.OpWrite, "role/bad", map[string]any{"user_claim": "sub"})
	authtest.WantErr(t, err, 400, "must have at least one bound constraint")
	_, err = h.Do(core.OpWrite, "role/bad", map[string]any{"user_claim": "sub", "bound_subject": "x",
		"bound_claims_type": "glob", "bound_claims": map[string]any{"n": 1}})
	authtest.WantErr(t, err, 400, `bound_claims["n"]: glob values must be strings`)
}
