package kubernetes

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/param"
	"github.com/cofferhq/coffer/internal/storage"
)

// Validation modes.
const (
	// ValidationTokenReview asks the apiserver (TokenReview) about every
	// login: it sees deleted service accounts and pods. The default.
	ValidationTokenReview = "tokenreview"
	// ValidationOffline verifies the signature with the issuer's keys and
	// never calls the apiserver.
	ValidationOffline = "offline"
)

// DefaultClockSkewLeeway is the leeway on exp, nbf and iat when the
// config does not set clock_skew_leeway.
const DefaultClockSkewLeeway = time.Minute

const configKey = "config"

// secret holds a credential. It prints, logs and marshals as
// "[redacted]"; reveal gives the value.
type secret string

func (secret) String() string               { return "[redacted]" }
func (secret) GoString() string             { return "[redacted]" }
func (secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }
func (s secret) reveal() string             { return string(s) }

// config is the mount's configuration (auth/<mount>/config).
type config struct {
	Host                 string        `json:"kubernetes_host"`
	CACert               string        `json:"kubernetes_ca_cert,omitempty"`
	PEMKeys              []string      `json:"pem_keys,omitempty"`
	Issuer               string        `json:"issuer,omitempty"`
	DisableISSValidation bool          `json:"disable_iss_validation"`
	DisableLocalCAJWT    bool          `json:"disable_local_ca_jwt"`
	Validation           string        `json:"validation"`
	OIDCDiscoveryURL     string        `json:"oidc_discovery_url,omitempty"`
	JWKSURL              string        `json:"jwks_url,omitempty"`
	ClockSkewLeeway      time.Duration `json:"clock_skew_leeway"`
	ReviewerJWT          secret        `json:"-"`
}

// storedConfig is config as stored (in the barrier, so the reviewer JWT
// is encrypted at rest).
type storedConfig struct {
	config
	StoredReviewerJWT string `json:"token_reviewer_jwt,omitempty"`
}

// defaultConfig is what a config write starts from: Vault's defaults.
func defaultConfig() config {
	return config{DisableISSValidation: true, Validation: ValidationTokenReview}
}

// decodeConfig reads a config write. A write replaces the whole config,
// as in Vault.
func decodeConfig(raw []byte) (config, error) {
	c := defaultConfig()
	b, err := param.Parse(raw)
	if err != nil {
		return c, err
	}
	var reviewer string
	b.String("kubernetes_host", &c.Host)
	b.String("kubernetes_ca_cert", &c.CACert)
	b.String("token_reviewer_jwt", &reviewer)
	b.Strings("pem_keys", &c.PEMKeys)
	b.String("issuer", &c.Issuer)
	b.Bool("disable_iss_validation", &c.DisableISSValidation)
	b.Bool("disable_local_ca_jwt", &c.DisableLocalCAJWT)
	b.String("validation", &c.Validation)
	b.String("oidc_discovery_url", &c.OIDCDiscoveryURL)
	b.String("jwks_url", &c.JWKSURL)
	b.Leeway("clock_skew_leeway", &c.ClockSkewLeeway)
	var annotations bool
	b.Bool("use_annotations_as_alias_metadata", &annotations)
	if annotations {
		b.Fail("use_annotations_as_alias_metadata", "not supported by coffer; leave it false")
	}
	c.ReviewerJWT = secret(strings.TrimSpace(reviewer))
	c.Host = strings.TrimSuffix(strings.TrimSpace(c.Host), "/")
	c.Validation = strings.ToLower(strings.TrimSpace(c.Validation))
	if c.Validation == "" {
		c.Validation = ValidationTokenReview
	}
	for _, e := range c.validate() {
		b.Failf("%s", e)
	}
	return c, b.Err()
}

// validate reports every problem with c.
func (c *config) validate() []string {
	var errs []string
	if c.Host == "" {
		errs = append(errs, "kubernetes_host: required (the apiserver's URL, e.g. https://kubernetes.default.svc)")
	} else if err := checkURL(c.Host); err != nil {
		errs = append(errs, "kubernetes_host: "+err.Error())
	}
	if c.CACert != "" {
		if _, err := certPool(c.CACert); err != nil {
			errs = append(errs, "kubernetes_ca_cert: "+err.Error())
		}
	}
	if _, err := jwtverify.ParsePEMKeys(c.PEMKeys); err != nil {
		errs = append(errs, "pem_keys: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for _, f := range []struct{ name, url string }{{"oidc_discovery_url", c.OIDCDiscoveryURL}, {"jwks_url", c.JWKSURL}} {
		if f.url != "" {
			if err := checkURL(f.url); err != nil {
				errs = append(errs, f.name+": "+err.Error())
			}
		}
	}
	if c.OIDCDiscoveryURL != "" && c.JWKSURL != "" {
		errs = append(errs, "oidc_discovery_url and jwks_url: set one, not both")
	}
	if c.ClockSkewLeeway > 10*time.Minute {
		errs = append(errs, "clock_skew_leeway: at most 10m")
	}
	switch c.Validation {
	case ValidationTokenReview:
	case ValidationOffline:
		if c.Issuer == "" {
			errs = append(errs, `issuer: required with validation "offline": the cluster's --service-account-issuer, e.g. https://kubernetes.default.svc.cluster.local`)
		}
		if len(c.PEMKeys) == 0 && c.JWKSURL == "" && c.OIDCDiscoveryURL == "" {
			if err := checkURL(c.Issuer); c.Issuer != "" && err != nil {
				errs = append(errs, `validation "offline" needs the issuer's keys: set pem_keys, jwks_url or oidc_discovery_url, or an issuer URL that serves OIDC discovery`)
			}
		}
	default:
		errs = append(errs, fmt.Sprintf("validation %q: want %q or %q", c.Validation, ValidationTokenReview, ValidationOffline))
	}
	return errs
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// certPool parses PEM certificates into a pool.
func certPool(pemText string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pemText)) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// data is the config-read response: secrets never leave, their presence
// does.
func (c *config) data() map[string]any {
	keys := c.PEMKeys
	if keys == nil {
		keys = []string{}
	}
	return map[string]any{
		"kubernetes_host":                   c.Host,
		"kubernetes_ca_cert":                c.CACert,
		"pem_keys":                          keys,
		"issuer":                            c.Issuer,
		"disable_iss_validation":            c.DisableISSValidation,
		"disable_local_ca_jwt":              c.DisableLocalCAJWT,
		"token_reviewer_jwt_set":            c.ReviewerJWT != "",
		"use_annotations_as_alias_metadata": false,
		"validation":                        c.Validation,
		"oidc_discovery_url":                c.OIDCDiscoveryURL,
		"jwks_url":                          c.JWKSURL,
		"clock_skew_leeway":                 leewaySeconds(c.ClockSkewLeeway),
	}
}

func leewaySeconds(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return int64(d / time.Second)
}

func loadConfig(ctx context.Context, s storage.Backend) (*config, error) {
	raw, err := s.Get(ctx, configKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: load config: %w", err)
	}
	var sc storedConfig
	if err := json.Unmarshal(raw, &sc); err != nil {
		return nil, fmt.Errorf("kubernetes: decode config: %w", err)
	}
	c := sc.config
	c.ReviewerJWT = secret(sc.StoredReviewerJWT)
	return &c, nil
}

func saveConfig(ctx context.Context, s storage.Backend, c *config) error {
	raw, err := json.Marshal(storedConfig{config: *c, StoredReviewerJWT: c.ReviewerJWT.reveal()})
	if err != nil {
		return err
	}
	if err := s.Put(ctx, configKey, raw); err != nil {
		return fmt.Errorf("kubernetes: save config: %w", err)
	}
	return nil
}
