// Package api is coffer's Go client: a small, standard-library-only
// client for the Vault-compatible HTTP API that coffer serves.
//
//	c, err := api.NewClient(api.Config{Address: "https://127.0.0.1:8200", Token: tok})
//	s, err := c.Logical().Read(ctx, "secret/data/app/db", nil)
//
// Errors from the server are *ResponseError with the status code and the
// server's messages. As in Vault's client, a 404 on Read, List or Delete
// without a body returns (nil, nil).
package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config configures a Client.
type Config struct {
	// Address is the server URL, e.g. "https://127.0.0.1:8200".
	Address string
	// Token is sent as X-Vault-Token.
	Token string
	// CACert is a PEM file of CAs to trust; empty means the system pool.
	CACert string
	// TLSSkipVerify disables certificate checks (testing only).
	TLSSkipVerify bool
	// Timeout bounds each request; zero means 60s.
	Timeout time.Duration
	// HTTPClient, when set, is used as is.
	HTTPClient *http.Client
}

// Client talks to one coffer server. It is safe for concurrent use.
type Client struct {
	addr  *url.URL
	token string
	http  *http.Client
}

// NewClient builds a client.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Address == "" {
		cfg.Address = "https://127.0.0.1:8200"
	}
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server address %q: want http(s)://host:port", cfg.Address)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLSSkipVerify} //nolint:gosec // opt-in
		if cfg.CACert != "" {
			pem, err := os.ReadFile(cfg.CACert)
			if err != nil {
				return nil, fmt.Errorf("read CA certificate: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", cfg.CACert)
			}
			tlsCfg.RootCAs = pool
		}
		tr.TLSClientConfig = tlsCfg
		timeout := cfg.Timeout
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		hc = &http.Client{Transport: tr, Timeout: timeout}
	}
	return &Client{addr: u, token: cfg.Token, http: hc}, nil
}

// Token returns the client's token.
func (c *Client) Token() string { return c.token }

// SetToken replaces the client's token. It must not be called while
// requests are in flight; WithToken is the concurrent-safe alternative.
func (c *Client) SetToken(t string) { c.token = t }

// WithToken returns a client for the same server and HTTP client that
// sends token t ("" sends none). The receiver is unchanged, so a process
// that replaces its token while requests are in flight swaps clients
// instead of calling SetToken.
func (c *Client) WithToken(t string) *Client {
	cp := *c
	cp.token = t
	return &cp
}

// Address returns the server address.
func (c *Client) Address() string { return c.addr.String() }

// ResponseError is a non-2xx answer from the server.
type ResponseError struct {
	StatusCode int
	Errors     []string
}

func (e *ResponseError) Error() string {
	msg := strings.Join(e.Errors, "; ")
	msg = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(msg, "1 error occurred:\n\t* ", ""), "\n", " "))
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("server answered %d: %s", e.StatusCode, msg)
}

// Secret is the response envelope.
type Secret struct {
	RequestID     string         `json:"request_id"`
	LeaseID       string         `json:"lease_id"`
	LeaseDuration int            `json:"lease_duration"`
	Renewable     bool           `json:"renewable"`
	Data          map[string]any `json:"data"`
	Warnings      []string       `json:"warnings"`
	Auth          *SecretAuth    `json:"auth"`
	WrapInfo      map[string]any `json:"wrap_info"`
}

// SecretAuth is the envelope's auth block.
type SecretAuth struct {
	ClientToken   string            `json:"client_token"`
	Accessor      string            `json:"accessor"`
	Policies      []string          `json:"policies"`
	TokenPolicies []string          `json:"token_policies"`
	Metadata      map[string]string `json:"metadata"`
	LeaseDuration int               `json:"lease_duration"`
	Renewable     bool              `json:"renewable"`
	Orphan        bool              `json:"orphan"`
	NumUses       int               `json:"num_uses"`
}

// Raw sends one request and returns the status and body. body may be nil,
// a []byte (sent as is) or any value (sent as JSON).
func (c *Client) Raw(ctx context.Context, method, path string, query url.Values, body any, header http.Header) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	u := *c.addr
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/" + strings.TrimPrefix(path, "/")
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, err
	}
	if c.token != "" {
		req.Header.Set("X-Vault-Token", c.token)
	}
	req.Header.Set("X-Vault-Request", "true")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, raw, nil
}

// do sends a request and decodes a JSON answer into out (when non-nil).
// It returns (false, nil) for a 404 without body data when allow404.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any, allow404 bool) (bool, error) {
	status, raw, err := c.Raw(ctx, method, path, query, body, nil)
	if err != nil {
		return false, err
	}
	if status >= 400 {
		var eb struct {
			Errors []string       `json:"errors"`
			Data   map[string]any `json:"data"`
		}
		_ = json.Unmarshal(raw, &eb)
		if status == http.StatusNotFound && allow404 {
			if eb.Data == nil {
				return false, nil
			}
			if out != nil {
				_ = json.Unmarshal(raw, out)
			}
			return true, nil
		}
		return false, &ResponseError{StatusCode: status, Errors: eb.Errors}
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return false, fmt.Errorf("decode response: %w", err)
		}
	}
	return true, nil
}

// IsStatus reports whether err is a *ResponseError with the given status.
func IsStatus(err error, status int) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

func jsonUnmarshal(raw []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// decodeSecret turns a raw answer into a Secret or a *ResponseError.
func decodeSecret(status int, raw []byte) (*Secret, error) {
	if status >= 400 {
		var eb struct {
			Errors []string `json:"errors"`
		}
		_ = json.Unmarshal(raw, &eb)
		return nil, &ResponseError{StatusCode: status, Errors: eb.Errors}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var s Secret
	if err := jsonUnmarshal(raw, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
