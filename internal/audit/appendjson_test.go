package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestAppendValueMatchesMarshal: the direct writer gives byte for byte
// what marshalling the HMAC'd copy gives, for every shape it handles and
// for awkward keys.
func TestAppendValueMatchesMarshal(t *testing.T) {
	hs := &hasher{h: hmac.New(sha256.New, []byte("k"))}
	keys := []string{"a", "", "quote\"", "back\\slash", "nl\n", "ctl\x01", "<html>&", "bad\xffutf8", "line\u2028sep", "é", "日本"}
	rng := rand.New(rand.NewPCG(1, 2))
	var gen func(depth int) any
	gen = func(depth int) any {
		switch n := rng.IntN(14); {
		case n == 0:
			return nil
		case n == 1:
			return rng.IntN(2) == 0
		case n == 2:
			return rng.IntN(1000) - 500
		case n == 3:
			return json.Number("12.5e3")
		case n == 4:
			return rng.Float64() * 1e6
		case n == 5:
			return time.Unix(int64(rng.IntN(1e9)), 0).UTC()
		case n == 6:
			return json.RawMessage(`{"x":["s",1,true,null]}`)
		case n == 7:
			return []string{"a", keys[rng.IntN(len(keys))]}
		case n == 8:
			return map[string]string{keys[rng.IntN(len(keys))]: "v"}
		case n == 9 && depth < 4:
			l := make([]any, rng.IntN(4))
			for i := range l {
				l[i] = gen(depth + 1)
			}
			return l
		case n >= 10 && depth < 4:
			m := map[string]any{}
			for range rng.IntN(5) {
				m[keys[rng.IntN(len(keys))]] = gen(depth + 1)
			}
			return m
		default:
			return keys[rng.IntN(len(keys))]
		}
	}
	for i := range 3000 {
		v := gen(0)
		h, err := hs.value(v, 0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := marshalCompact(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := hs.appendValue(nil, v, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: %#v\n got %s\nwant %s", i, v, got, want)
		}
	}
}

// TestAppendValueRefusesNonNumbers: a json.Number holding a string is
// refused, not written unhashed.
func TestAppendValueRefusesNonNumbers(t *testing.T) {
	hs := &hasher{h: hmac.New(sha256.New, []byte("k"))}
	for _, n := range []json.Number{`"secret"`, "true", "", "1 2", "{}"} {
		if b, err := hs.appendValue(nil, map[string]any{"x": n}, 0); err == nil {
			t.Errorf("json.Number %q: wrote %s", n, b)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the value: %v", err)
		}
	}
}

func BenchmarkRenderKVRead(b *testing.B) {
	hs := &hasher{h: hmac.New(sha256.New, []byte("k")), auths: &authMemo{}}
	e := &Entry{Type: "response", Time: time.Now(),
		Auth:    &Auth{TokenID: "id", ClientToken: "s.abc", Accessor: "acc", Policies: []string{"root"}, TokenType: "service"},
		Request: &Request{ID: "id", Operation: "read", MountType: "kv", Path: "secret/data/app/db", RemoteAddress: "127.0.0.1"},
		Response: &Response{Data: map[string]any{
			"data":     map[string]any{"v": strings.Repeat("x", 256)},
			"metadata": map[string]any{"created_time": "2026-11-23T10:00:00Z", "custom_metadata": nil, "deletion_time": "", "destroyed": false, "version": 3},
		}}}
	b.ReportAllocs()
	buf := make([]byte, 0, 4096)
	for b.Loop() {
		w := entryWriter{hs: hs}
		var err error
		if buf, err = w.appendEntry(buf[:0], e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendEntryMatchesMarshal: the hand-written entry encoder agrees
// with encoding/json marshalling the entry's wire form (built with
// hs.value) on every combination of present and absent fields, and when
// consecutive entries share their auth and request (copied, not
// rendered again).
func TestAppendEntryMatchesMarshal(t *testing.T) {
	hs := &hasher{h: hmac.New(sha256.New, []byte("k")), auths: &authMemo{}}
	rng := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "x", "q\"\\<>&\n\x00é\u2028\xff"}
	s := func() string { return strs[rng.IntN(len(strs))] }
	list := func() []string {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		return []string{s(), s()}
	}
	auth := func() *Auth {
		if rng.IntN(3) == 0 {
			return nil
		}
		a := &Auth{ClientToken: s(), Accessor: s(), DisplayName: s(), Policies: list(), TokenPolicies: list(),
			EntityID: s(), TokenType: s(), TokenTTL: int64(rng.IntN(3) - 1)}
		if rng.IntN(2) == 0 { // as the core sets it: the token's own id (its HMACs are remembered)
			a.TokenID = "id:" + a.ClientToken
		}
		if rng.IntN(2) == 0 {
			a.Metadata = map[string]string{s(): s(), "k": s()}
		}
		return a
	}
	data := func() any {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return json.RawMessage("null")
		case 2:
			return map[string]any{"a": s(), "n": []any{1, nil}}
		}
		return s()
	}
	var prev *Entry
	for i := range 5000 {
		e := &Entry{Time: time.Unix(int64(rng.IntN(2e9)), int64(rng.IntN(1e9))), Type: s(), Auth: auth(), Error: s()}
		if rng.IntN(3) > 0 {
			e.Request = &Request{ID: s(), Operation: s(), MountType: s(), MountAccessor: s(), Path: s(), Data: data(), RemoteAddress: s()}
		}
		if rng.IntN(3) > 0 {
			e.Response = &Response{Data: data(), Auth: auth(), Warnings: list()}
		}
		w := entryWriter{hs: hs}
		var buf []byte
		if prev != nil && rng.IntN(2) == 0 { // a request entry, then its response entry
			e.Auth, e.Request = prev.Auth, prev.Request
			var err error
			if buf, err = w.appendEntry(buf, prev); err != nil {
				t.Fatal(err)
			}
		}
		at := len(buf)
		got, err := w.appendEntry(buf, e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := renderReference(e, hs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[at:], want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got[at:], want)
		}
		prev = e
	}
}

// auth returns a copy of a with its token and accessor HMAC'd: the oracle's
// way of writing an Auth.
func (hs *hasher) auth(a *Auth) *Auth {
	if a == nil {
		return nil
	}
	c := *a
	if c.ClientToken != "" {
		c.ClientToken = hs.str(c.ClientToken)
	}
	if c.Accessor != "" {
		c.Accessor = hs.str(c.Accessor)
	}
	return &c
}

// renderReference is the oracle for appendEntry: the entry's wire form,
// built with hs.value, marshalled by encoding/json.
func renderReference(e *Entry, hs *hasher) ([]byte, error) {
	data := func(v any) (json.RawMessage, error) {
		h, err := hs.value(v, 0)
		if err != nil || h == nil {
			return nil, err
		}
		b, err := marshalCompact(h)
		if string(b) == "null" {
			return nil, err
		}
		return b, err
	}
	w := wireEntry{Time: e.Time.UTC().Format(timeFormat), Type: e.Type, Auth: hs.auth(e.Auth), Error: e.Error}
	if r := e.Request; r != nil {
		d, err := data(r.Data)
		if err != nil {
			return nil, err
		}
		w.Request = &wireRequest{ID: r.ID, Operation: r.Operation, MountType: r.MountType, MountAccessor: r.MountAccessor,
			Namespace: wireNamespace{ID: "root"}, Path: r.Path, Data: d, RemoteAddress: r.RemoteAddress}
	}
	if r := e.Response; r != nil {
		d, err := data(r.Data)
		if err != nil {
			return nil, err
		}
		w.Response = &wireResponse{Data: d, Auth: hs.auth(r.Auth), Warnings: r.Warnings}
	}
	return marshalCompact(&w)
}

// The wire form of an entry (before seq and prev are put in front). The
// namespace is always root: coffer has no namespaces, and SIEM parsers
// written for Vault expect the field.
type wireEntry struct {
	Time     string        `json:"time"`
	Type     string        `json:"type"`
	Auth     *Auth         `json:"auth,omitempty"`
	Request  *wireRequest  `json:"request,omitempty"`
	Response *wireResponse `json:"response,omitempty"`
	Error    string        `json:"error,omitempty"`
}

type wireRequest struct {
	ID            string          `json:"id,omitempty"`
	Operation     string          `json:"operation,omitempty"`
	MountType     string          `json:"mount_type,omitempty"`
	MountAccessor string          `json:"mount_accessor,omitempty"`
	Namespace     wireNamespace   `json:"namespace"`
	Path          string          `json:"path,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
	RemoteAddress string          `json:"remote_address,omitempty"`
}

type wireNamespace struct {
	ID string `json:"id"`
}

type wireResponse struct {
	Data     json.RawMessage `json:"data,omitempty"`
	Auth     *Auth           `json:"auth,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
}

// TestAuthMemo: the remembered HMACs of a token and its accessor are
// the ones computed afresh, for many tokens, past the memo's bound (it
// starts over), and a token id seen with another accessor is hashed
// again rather than answered from the memo.
func TestAuthMemo(t *testing.T) {
	key := []byte("k")
	hs := &hasher{h: hmac.New(sha256.New, key), auths: &authMemo{}}
	render := func(a *Auth) string { return string(appendAuth(nil, a, hs)) }
	want := func(tok, acc string) string {
		return `{"client_token":"` + HashString(key, tok) + `","accessor":"` + HashString(key, acc) + `"}`
	}
	for round := range 2 {
		for i := range maxAuthMemo + 10 {
			tok, acc := fmt.Sprint("tok", i), fmt.Sprint("acc", i)
			if got := render(&Auth{TokenID: "id" + tok, ClientToken: tok, Accessor: acc}); got != want(tok, acc) {
				t.Fatalf("round %d, token %d: %s, want %s", round, i, got, want(tok, acc))
			}
		}
	}
	if n := hs.auths.n.Load(); n < 1 || n > maxAuthMemo {
		t.Fatalf("memo holds %d tokens, bound %d", n, maxAuthMemo)
	}
	a := &Auth{TokenID: "idtok1", ClientToken: "tok1", Accessor: "other"}
	if got := render(a); got != want("tok1", "other") {
		t.Fatalf("another accessor under a remembered id: %s, want %s", got, want("tok1", "other"))
	}
	a = &Auth{TokenID: "idx", ClientToken: "x"} // no accessor
	if got, w := render(a), `{"client_token":"`+HashString(key, "x")+`"}`; got != w || render(a) != w {
		t.Fatalf("token without accessor: %s, want %s", got, w)
	}
}
