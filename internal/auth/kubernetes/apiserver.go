package kubernetes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// apiTimeout bounds one call to the apiserver.
	apiTimeout = 10 * time.Second
	// maxAPIResponse bounds a response body from the apiserver.
	maxAPIResponse = 1 << 20
)

// apiServer is the little of the Kubernetes API this method needs:
// TokenReview and reading a Namespace's labels.
type apiServer struct {
	host   string // https://host:port, no trailing slash
	client *http.Client
}

// newHTTPClient returns a client trusting roots (nil: the system roots).
func newHTTPClient(roots *x509.CertPool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t, Timeout: apiTimeout}
}

// review is the part of a TokenReview status the login uses.
type review struct {
	Authenticated bool                `json:"authenticated"`
	User          reviewUser          `json:"user"`
	Audiences     []string            `json:"audiences"`
	Error         string              `json:"error"`
	Extra         map[string][]string `json:"-"`
}

type reviewUser struct {
	Username string              `json:"username"`
	UID      string              `json:"uid"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

// tokenReview asks the apiserver about token, authenticating as bearer,
// for audiences (none: the apiserver's own).
func (a *apiServer) tokenReview(ctx context.Context, bearer, token string, audiences []string) (*review, error) {
	body := map[string]any{
		"apiVersion": "authentication.k8s.io/v1",
		"kind":       "TokenReview",
		"spec":       map[string]any{"token": token},
	}
	if len(audiences) > 0 {
		body["spec"].(map[string]any)["audiences"] = audiences
	}
	var out struct {
		Status review `json:"status"`
	}
	if err := a.do(ctx, http.MethodPost, "/apis/authentication.k8s.io/v1/tokenreviews", bearer, body, &out); err != nil {
		return nil, fmt.Errorf("tokenreview: %w", err)
	}
	return &out.Status, nil
}

// namespaceLabels returns the labels of namespace ns.
func (a *apiServer) namespaceLabels(ctx context.Context, bearer, ns string) (map[string]string, error) {
	var out struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/v1/namespaces/"+url.PathEscape(ns), bearer, nil, &out); err != nil {
		return nil, fmt.Errorf("read namespace %s: %w", ns, err)
	}
	return out.Metadata.Labels, nil
}

func (a *apiServer) do(ctx context.Context, method, path, bearer string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.host+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, statusMessage(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// statusMessage extracts the message of a Kubernetes Status body.
func statusMessage(b []byte) string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &st) == nil && st.Message != "" {
		return st.Message
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// bearerTransport adds a bearer token to requests for one host only, so
// the reviewer token reaches the apiserver and nothing else (the issuer
// discovery endpoints of a cluster may need it; an external issuer must
// never see it).
type bearerTransport struct {
	base  http.RoundTripper
	host  string // host:port the token is for
	token func() string
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == b.host && r.URL.Scheme == "https" {
		if tok := b.token(); tok != "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return b.base.RoundTrip(r)
}
