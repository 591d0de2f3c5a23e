package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHashString(t *testing.T) {
	t.Parallel()
	// RFC 4231, test case 2.
	got := HashString([]byte("Jefe"), "what do ya want for nothing?")
	want := "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Fatalf("HashString = %s, want %s", got, want)
	}
}

// TestHashEmptyString: the empty string's HMAC, which a hasher makes once
// and reuses, is the HMAC of "" under that hasher's key, every time.
func TestHashEmptyString(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"Jefe", "another key"} {
		hs := &hasher{h: hmac.New(sha256.New, []byte(key))}
		want := HashString([]byte(key), "")
		for i := range 3 {
			if got := string(hs.appendHMAC([]byte("x"), "")); got != "x"+want {
				t.Fatalf("key %q, use %d: %s, want x%s", key, i, got, want)
			}
			hs.appendHMAC(nil, "not empty") // between uses, the hash holds other state
		}
	}
}

type kvSecret struct {
	Data     map[string]string `json:"data"`
	Metadata struct {
		Version int    `json:"version"`
		Created string `json:"created_time"`
	} `json:"metadata"`
	Raw []byte `json:"raw"`
}

// TestHMACCoverage plants secret strings everywhere a record carries
// values and checks that none survives in the written line, that each
// string leaf appears as its HMAC, and that numbers and booleans stay.
func TestHMACCoverage(t *testing.T) {
	t.Parallel()
	sec := kvSecret{Data: map[string]string{"password": "planted-struct-pw"}, Raw: []byte("planted-bytes")}
	sec.Metadata.Version, sec.Metadata.Created = 7, "planted-created"
	tests := []struct {
		name    string
		entry   Entry
		secrets []string // must not appear
		hashed  []string // must appear as HMACs
		kept    []string // must appear as is
	}{
		{
			name:    "auth tokens",
			entry:   Entry{Auth: &Auth{ClientToken: "planted-token", Accessor: "planted-accessor", DisplayName: "token-app", Policies: []string{"app"}}},
			secrets: []string{"planted-token", "planted-accessor"},
			hashed:  []string{"planted-token", "planted-accessor"},
			kept:    []string{`"display_name":"token-app"`, `"policies":["app"]`},
		},
		{
			name: "response auth",
			entry: Entry{Response: &Response{Auth: &Auth{ClientToken: "planted-new-token", Accessor: "planted-new-acc", TokenTTL: 3600},
				Warnings: []string{"a warning"}}},
			secrets: []string{"planted-new-token", "planted-new-acc"},
			hashed:  []string{"planted-new-token", "planted-new-acc"},
			kept:    []string{`"token_ttl":3600`, `"warnings":["a warning"]`},
		},
		{
			name: "request data, nested",
			entry: Entry{Request: &Request{Path: "secret/data/app", Data: map[string]any{
				"data":    map[string]any{"password": "planted-pw", "list": []any{"planted-l0", map[string]any{"k": "planted-deep"}}},
				"options": map[string]any{"cas": 3, "ok": true, "ratio": 0.5, "none": nil},
			}}},
			secrets: []string{"planted-pw", "planted-l0", "planted-deep"},
			hashed:  []string{"planted-pw", "planted-l0", "planted-deep"},
			kept:    []string{`"cas":3`, `"ok":true`, `"ratio":0.5`, `"none":null`, `"path":"secret/data/app"`},
		},
		{
			name: "typed maps and slices",
			entry: Entry{Request: &Request{Data: map[string]any{
				"m": map[string]string{"a": "planted-ms"}, "s": []string{"planted-ss"},
				"n": json.Number("12345678901234567890"),
			}}},
			secrets: []string{"planted-ms", "planted-ss"},
			hashed:  []string{"planted-ms", "planted-ss"},
			kept:    []string{`"n":12345678901234567890`},
		},
		{
			name:    "raw JSON body",
			entry:   Entry{Request: &Request{Data: json.RawMessage(`{"value":"planted-raw","list":["planted-raw2"],"num":1.50,"big":1e400}`)}},
			secrets: []string{"planted-raw", "planted-raw2"},
			hashed:  []string{"planted-raw", "planted-raw2"},
			kept:    []string{`"num":1.50`, `"big":1e400`},
		},
		{
			name:    "response data, struct",
			entry:   Entry{Response: &Response{Data: &sec}},
			secrets: []string{"planted-struct-pw", "planted-created", "planted-bytes", base64.StdEncoding.EncodeToString([]byte("planted-bytes"))},
			hashed:  []string{"planted-struct-pw", "planted-created", base64.StdEncoding.EncodeToString([]byte("planted-bytes"))},
			kept:    []string{`"version":7`},
		},
		{
			name:    "response data, a bare string",
			entry:   Entry{Response: &Response{Data: "planted-bare"}},
			secrets: []string{"planted-bare"},
			hashed:  []string{"planted-bare"},
		},
		{
			name:    "empty strings are hashed too",
			entry:   Entry{Request: &Request{Data: map[string]any{"e": ""}}},
			hashed:  []string{""},
			secrets: []string{`"e":""`},
		},
		{
			name:    "time values",
			entry:   Entry{Response: &Response{Data: map[string]any{"t": time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}}},
			secrets: []string{"2031-01-02"},
			hashed:  []string{"2031-01-02T03:04:05Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tempLog(t)
			b := newBroker(t, BrokerOptions{})
			enable(t, b, "file/", newFileDevice(t, path))
			if err := b.LogResponse(t.Context(), &tc.entry); err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, path)
			line := string(lines[0])
			for _, s := range tc.secrets {
				if strings.Contains(line, s) {
					t.Errorf("secret %q survives in %s", s, line)
				}
			}
			for _, s := range tc.hashed {
				if !strings.Contains(line, `"`+HashString(testHMACKey, s)+`"`) {
					t.Errorf("no HMAC of %q in %s", s, line)
				}
			}
			for _, s := range tc.kept {
				if !strings.Contains(line, s) {
					t.Errorf("%s missing from %s", s, line)
				}
			}
		})
	}
}

// TestRecordShape checks the record against the fields Vault's audit
// log has, so SIEM parsers written for it keep working.
func TestRecordShape(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	b := newBroker(t, BrokerOptions{})
	enable(t, b, "file/", newFileDevice(t, path))
	req, resp := kvRead(1, "hunter2")
	if err := b.LogRequest(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := b.LogResponse(t.Context(), resp); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	t.Logf("%s", lines[1])
	var rec struct {
		Seq  uint64 `json:"seq"`
		Prev string `json:"prev"`
		Type string `json:"type"`
		Time time.Time
		Auth struct {
			ClientToken string `json:"client_token"`
			Accessor    string `json:"accessor"`
		}
		Request struct {
			Namespace struct{ ID string }
		}
		Response struct {
			Data map[string]map[string]any
		}
	}
	var raw map[string]any
	if err := json.Unmarshal(lines[1], &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seq", "prev", "type", "time", "auth", "request", "response"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no %q in the record", k)
		}
	}
	auth := raw["auth"].(map[string]any)
	for _, k := range []string{"client_token", "accessor", "display_name", "policies", "token_policies", "metadata", "entity_id", "token_type"} {
		if _, ok := auth[k]; !ok {
			t.Errorf("no auth.%s", k)
		}
	}
	r := raw["request"].(map[string]any)
	for _, k := range []string{"id", "operation", "mount_type", "mount_accessor", "path", "remote_address", "namespace"} {
		if _, ok := r[k]; !ok {
			t.Errorf("no request.%s", k)
		}
	}
	if err := json.Unmarshal(lines[1], &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 2 || rec.Prev != lineHash(bytes.TrimSuffix(lines[0], []byte{'\n'})) || rec.Type != "response" ||
		rec.Request.Namespace.ID != "root" || !strings.HasPrefix(rec.Auth.ClientToken, "hmac-sha256:") ||
		!strings.HasPrefix(rec.Auth.Accessor, "hmac-sha256:") ||
		rec.Response.Data["data"]["password"] != HashString(testHMACKey, "hunter2") ||
		rec.Response.Data["metadata"]["version"] != 3.0 {
		t.Fatalf("record: %+v", rec)
	}
}

// TestRenderFailsClosed: data that cannot be written fails the record.
func TestRenderFailsClosed(t *testing.T) {
	t.Parallel()
	b := newBroker(t, BrokerOptions{})
	enable(t, b, "file/", newFileDevice(t, tempLog(t)))
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, data := range map[string]any{"channel": make(chan int), "cycle": cyclic} {
		err := b.LogRequest(t.Context(), &Entry{Request: &Request{Data: data}})
		if !errors.Is(err, ErrFailed) {
			t.Errorf("%s: err = %v, want ErrFailed", name, err)
		}
	}
}
