package jwt

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/param"
	"github.com/cofferhq/coffer/internal/storage"
)

const configKey = "config"

// config is the mount's configuration (auth/<mount>/config).
type config struct {
	OIDCDiscoveryURL   string   `json:"oidc_discovery_url,omitempty"`
	OIDCDiscoveryCAPEM string   `json:"oidc_discovery_ca_pem,omitempty"`
	JWKSURL            string   `json:"jwks_url,omitempty"`
	JWKSCAPEM          string   `json:"jwks_ca_pem,omitempty"`
	PubKeys            []string `json:"jwt_validation_pubkeys,omitempty"`
	SupportedAlgs      []string `json:"jwt_supported_algs,omitempty"`
	BoundIssuer        string   `json:"bound_issuer,omitempty"`
	DefaultRole        string   `json:"default_role,omitempty"`
	NamespaceInState   bool     `json:"namespace_in_state,omitempty"`
}

// decodeConfig reads a config write; a write replaces the whole config,
// as in Vault. Every problem is reported at once.
func decodeConfig(raw []byte) (config, error) {
	var c config
	b, err := param.Parse(raw)
	if err != nil {
		return c, err
	}
	b.String("oidc_discovery_url", &c.OIDCDiscoveryURL)
	b.String("oidc_discovery_ca_pem", &c.OIDCDiscoveryCAPEM)
	b.String("jwks_url", &c.JWKSURL)
	b.String("jwks_ca_pem", &c.JWKSCAPEM)
	b.Strings("jwt_validation_pubkeys", &c.PubKeys)
	b.Strings("jwt_supported_algs", &c.SupportedAlgs)
	b.String("bound_issuer", &c.BoundIssuer)
	b.String("default_role", &c.DefaultRole)
	b.Bool("namespace_in_state", &c.NamespaceInState)
	// The browser (OIDC authorization code) flow is not served: its
	// settings must stay empty.
	for _, name := range []string{"oidc_client_id", "oidc_client_secret", "oidc_response_mode"} {
		var v string
		b.String(name, &v)
		if v != "" {
			b.Fail(name, "the OIDC browser login is not supported by coffer; leave it empty")
		}
	}
	for _, name := range []string{"oidc_response_types", "jwks_pairs", "unsupported_critical_cert_extensions"} {
		var v []string
		b.Strings(name, &v)
		if len(v) > 0 {
			b.Fail(name, "not supported by coffer; leave it empty")
		}
	}
	var provider map[string]any
	b.Object("provider_config", &provider)
	if len(provider) > 0 {
		b.Fail("provider_config", "not supported by coffer; leave it empty")
	}
	for _, e := range c.validate() {
		b.Failf("%s", e)
	}
	return c, b.Err()
}

// validate reports every static problem with c.
func (c *config) validate() []string {
	var errs []string
	n := 0
	for _, set := range []bool{len(c.PubKeys) > 0, c.JWKSURL != "", c.OIDCDiscoveryURL != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set")
	}
	if _, err := jwtverify.ParsePEMKeys(c.PubKeys); err != nil {
		errs = append(errs, "jwt_validation_pubkeys: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for _, f := range []struct{ name, url string }{{"oidc_discovery_url", c.OIDCDiscoveryURL}, {"jwks_url", c.JWKSURL}} {
		if f.url == "" {
			continue
		}
		if u, err := url.Parse(f.url); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Sprintf("%s: %q is not an http(s) URL", f.name, f.url))
		}
	}
	for _, f := range []struct{ name, pem, needs, url string }{
		{"oidc_discovery_ca_pem", c.OIDCDiscoveryCAPEM, "oidc_discovery_url", c.OIDCDiscoveryURL},
		{"jwks_ca_pem", c.JWKSCAPEM, "jwks_url", c.JWKSURL},
	} {
		if f.pem == "" {
			continue
		}
		if f.url == "" {
			errs = append(errs, fmt.Sprintf("%s: only used with %s", f.name, f.needs))
		}
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(f.pem)) {
			errs = append(errs, f.name+": no PEM certificate found")
		}
	}
	if _, err := jwtverify.ParseAlgorithms(c.SupportedAlgs); err != nil {
		errs = append(errs, "jwt_supported_algs: "+err.Error())
	}
	return errs
}

// data is the config-read response.
func (c *config) data() map[string]any {
	orEmpty := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return map[string]any{
		"oidc_discovery_url":     c.OIDCDiscoveryURL,
		"oidc_discovery_ca_pem":  c.OIDCDiscoveryCAPEM,
		"oidc_client_id":         "",
		"oidc_response_mode":     "",
		"oidc_response_types":    []string{},
		"jwks_url":               c.JWKSURL,
		"jwks_ca_pem":            c.JWKSCAPEM,
		"jwks_pairs":             []string{},
		"jwt_validation_pubkeys": orEmpty(c.PubKeys),
		"jwt_supported_algs":     orEmpty(c.SupportedAlgs),
		"bound_issuer":           c.BoundIssuer,
		"default_role":           c.DefaultRole,
		"namespace_in_state":     c.NamespaceInState,
		"provider_config":        map[string]any{},
	}
}

func loadConfig(ctx context.Context, s storage.Backend) (*config, error) {
	raw, err := s.Get(ctx, configKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jwt: load config: %w", err)
	}
	c := &config{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("jwt: decode config: %w", err)
	}
	return c, nil
}

func saveConfig(ctx context.Context, s storage.Backend, c *config) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, configKey, raw); err != nil {
		return fmt.Errorf("jwt: save config: %w", err)
	}
	return nil
}
