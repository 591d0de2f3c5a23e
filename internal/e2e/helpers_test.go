package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/api"
	"github.com/cofferhq/coffer/internal/servertest"
)

// initServer initialises p with shares/threshold and unseals it.
func initServer(t *testing.T, p *servertest.Process, shares, threshold int) (*api.Client, *api.InitResponse) {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: p.Addr})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Sys().Init(t.Context(), api.InitRequest{SecretShares: shares, SecretThreshold: threshold})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	unseal(t, c, res.KeysBase64[:threshold])
	c.SetToken(res.RootToken)
	return c, res
}

func unseal(t *testing.T, c *api.Client, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, err := c.Sys().Unseal(t.Context(), k); err != nil {
			t.Fatalf("unseal: %v", err)
		}
	}
	st, err := c.Sys().SealStatus(t.Context())
	if err != nil || st.Sealed {
		t.Fatalf("still sealed: %+v %v", st, err)
	}
}

func client(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawDo sends a raw HTTP request and returns status and body.
func rawDo(t *testing.T, method, url, token string, body string, hdr map[string]string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func errorsOf(t *testing.T, body string) []string {
	t.Helper()
	var e struct {
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an error body: %q", body)
	}
	return e.Errors
}

func mustWrite(t *testing.T, ctx context.Context, c *api.Client, path string, data any) {
	t.Helper()
	if _, err := c.Logical().Write(ctx, path, data); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

var _ = bytes.Contains

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
