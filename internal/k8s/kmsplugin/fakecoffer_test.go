package kmsplugin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cofferhq/coffer/api"
)

// fakeCoffer serves the wire subset of coffer the plugin uses: transit
// encrypt and decrypt for one key (AES-256-GCM per version, "vault:vN:"
// ciphertexts), token lookup-self and renew-self, and login. It stands in
// for coffer where a test needs a fault coffer cannot be made to show on
// demand (a hang, a refused renewal, fake time); the integration test runs
// the real server.
type fakeCoffer struct {
	t     testing.TB
	mount string
	key   string

	// mu guards everything below.
	mu        sync.Mutex
	versions  [][]byte // AES keys; versions[0] is version 1
	tokens    map[string]*fakeToken
	sealed    bool
	hang      bool // transit calls block until the request is cancelled
	denyRenew bool
	maxTTL    time.Duration // caps renewals from a token's creation; 0: none
	loginTTL  time.Duration
	calls     map[string]int
	// gate, when set, holds every transit request until it receives from
	// gate (or the request is cancelled): a request waiting there is in
	// flight.
	gate chan struct{}
	// sizes has one entry per transit request: 0 for a plain request,
	// else the number of batch_input items.
	sizes []int
}

type fakeToken struct {
	expires   time.Time // zero: never
	renewable bool
	created   time.Time
	ttl       time.Duration
}

func newFakeCoffer(t testing.TB) *fakeCoffer {
	f := &fakeCoffer{t: t, mount: "transit", key: "kube", tokens: map[string]*fakeToken{},
		calls: map[string]int{}, loginTTL: time.Minute}
	f.rotate()
	return f
}

// rotate adds a key version.
func (f *fakeCoffer) rotate() {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	f.mu.Lock()
	f.versions = append(f.versions, k)
	f.mu.Unlock()
}

// addToken registers a token with ttl (0: never expires).
func (f *fakeCoffer) addToken(ttl time.Duration, renewable bool) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	tok := "s." + hex.EncodeToString(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := &fakeToken{renewable: renewable, created: time.Now(), ttl: ttl}
	if ttl > 0 {
		ft.expires = time.Now().Add(ttl)
	}
	f.tokens[tok] = ft
	return tok
}

func (f *fakeCoffer) revoke(tok string) {
	f.mu.Lock()
	delete(f.tokens, tok)
	f.mu.Unlock()
}

func (f *fakeCoffer) set(fn func(f *fakeCoffer)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *fakeCoffer) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// transitSizes returns the sizes of the transit requests seen (0: plain).
func (f *fakeCoffer) transitSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.sizes...)
}

// encryptDirect makes a ciphertext with the latest version without the
// plugin, as another client of coffer would.
func (f *fakeCoffer) encryptDirect(pt []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seal(len(f.versions), pt)
}

func (f *fakeCoffer) seal(v int, pt []byte) string {
	g := gcm(f.versions[v-1])
	nonce := make([]byte, g.NonceSize())
	_, _ = rand.Read(nonce)
	return "vault:v" + strconv.Itoa(v) + ":" + base64.StdEncoding.EncodeToString(g.Seal(nonce, nonce, pt, nil))
}

func gcm(k []byte) cipher.AEAD {
	b, err := aes.NewCipher(k)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

// writeJSON writes v; a map without "errors" is a Vault envelope and gets
// a request_id, as coffer's answers have.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if m, ok := v.(map[string]any); ok && m["errors"] == nil {
		m["request_id"] = "req-1"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"errors": []string{msg}})
}

func (f *fakeCoffer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	var body map[string]any
	if r.Body != nil {
		_ = json.NewDecoder(r.Body).Decode(&body)
	}
	str := func(k string) string { s, _ := body[k].(string); return s }

	f.mu.Lock()
	f.calls[path]++
	sealed, hang := f.sealed, f.hang
	f.mu.Unlock()
	if sealed {
		writeErr(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	if strings.HasSuffix(path, "/login") {
		f.mu.Lock()
		ttl := f.loginTTL
		f.mu.Unlock()
		if str("role") == "" || str("jwt") != "good-jwt" {
			writeErr(w, http.StatusForbidden, "permission denied")
			return
		}
		tok := f.addToken(ttl, true)
		writeJSON(w, 200, map[string]any{"auth": map[string]any{
			"client_token": tok, "lease_duration": int(ttl / time.Second), "renewable": true}})
		return
	}

	f.mu.Lock()
	tok, ok := f.tokens[r.Header.Get("X-Vault-Token")]
	if ok && !tok.expires.IsZero() && !time.Now().Before(tok.expires) {
		delete(f.tokens, r.Header.Get("X-Vault-Token"))
		ok = false
	}
	f.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusForbidden, "permission denied")
		return
	}

	switch path {
	case "auth/token/lookup-self":
		f.mu.Lock()
		ttl := 0
		if !tok.expires.IsZero() {
			ttl = int(time.Until(tok.expires).Round(time.Second) / time.Second)
		}
		d := map[string]any{"ttl": ttl, "creation_ttl": int(tok.ttl / time.Second), "renewable": tok.renewable, "policies": []string{"default", "kms"}}
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"data": d})
		return
	case "auth/token/renew-self":
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.denyRenew || !tok.renewable {
			writeErr(w, http.StatusBadRequest, "lease is not renewable")
			return
		}
		inc := tok.ttl
		if n, ok := body["increment"].(float64); ok && n > 0 {
			inc = time.Duration(n) * time.Second
		}
		exp := time.Now().Add(inc)
		if f.maxTTL > 0 && exp.After(tok.created.Add(f.maxTTL)) {
			exp = tok.created.Add(f.maxTTL)
		}
		tok.expires = exp
		writeJSON(w, 200, map[string]any{"auth": map[string]any{
			"lease_duration": int(time.Until(exp).Round(time.Second) / time.Second), "renewable": true}})
		return
	}

	if hang {
		<-r.Context().Done()
		return
	}
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	op, key, ok := strings.Cut(strings.TrimPrefix(path, f.mount+"/"), "/")
	if !ok || key != f.key {
		writeErr(w, http.StatusBadRequest, "encryption key not found")
		return
	}
	list, batch := body["batch_input"].([]any)
	f.mu.Lock()
	f.sizes = append(f.sizes, len(list))
	f.mu.Unlock()
	if !batch {
		res, err := f.transit(op, body)
		if err != nil {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, 200, map[string]any{"data": res})
		return
	}
	// As coffer and Vault: results in order, an error in place of each
	// failed item's result, 400 when any failed.
	out := make([]map[string]any, len(list))
	code := 200
	for i, x := range list {
		item, _ := x.(map[string]any)
		res, err := f.transit(op, item)
		if err != nil {
			res, code = map[string]any{"error": err.Error()}, http.StatusBadRequest
		}
		res["reference"] = ""
		out[i] = res
	}
	writeJSON(w, code, map[string]any{"data": map[string]any{"batch_results": out}})
}

// transit runs one encrypt or decrypt item.
func (f *fakeCoffer) transit(op string, item map[string]any) (map[string]any, error) {
	str := func(k string) string { s, _ := item[k].(string); return s }
	switch op {
	case "encrypt":
		pt, err := base64.StdEncoding.DecodeString(str("plaintext"))
		if err != nil {
			return nil, errors.New("failed to base64-decode plaintext")
		}
		f.mu.Lock()
		v := len(f.versions)
		ct := f.seal(v, pt)
		f.mu.Unlock()
		return map[string]any{"ciphertext": ct, "key_version": v}, nil
	case "decrypt":
		pt, err := f.open(str("ciphertext"))
		if err != nil {
			return nil, err
		}
		return map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}, nil
	default:
		return nil, errors.New("unsupported path")
	}
}

func (f *fakeCoffer) open(ct string) ([]byte, error) {
	rest, ok := strings.CutPrefix(ct, "vault:v")
	num, b64, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return nil, errors.New("invalid ciphertext: no prefix")
	}
	v, err := strconv.Atoi(num)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil || v < 1 || v > len(f.versions) {
		return nil, errors.New("invalid ciphertext: version is too new")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	g := gcm(f.versions[v-1])
	if err != nil || len(raw) < g.NonceSize() {
		return nil, errors.New("invalid ciphertext: bad body")
	}
	pt, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], nil)
	if err != nil {
		return nil, errors.New("cipher: message authentication failed")
	}
	return pt, nil
}

// handlerTransport calls an http.Handler in the caller's goroutine: no
// sockets, so it works inside a synctest bubble. down makes every request
// fail as an unreachable server would.
type handlerTransport struct {
	h    http.Handler
	down atomic.Bool
}

func (t *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.down.Load() {
		return nil, errors.New("dial tcp 127.0.0.1:8200: connect: connection refused")
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// fakeClient is an api client that reaches f in memory.
func fakeClient(t testing.TB, f *fakeCoffer) (*api.Client, *handlerTransport) {
	t.Helper()
	tr := &handlerTransport{h: f}
	c, err := api.NewClient(api.Config{Address: "http://coffer.test:8200", HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

// staticAuth hands out one fixed token, as a token file would, without a
// file; ttl is what lookup-self says.
type staticAuth struct{ tok string }

func (s staticAuth) String() string { return "static token" }
func (s staticAuth) check() error   { return nil }
func (s staticAuth) obtain(context.Context, *api.Client) (*grant, error) {
	return &grant{token: s.tok, ttl: unknownTTL, at: time.Now()}, nil
}
