package transit

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
)

// benchRequest is a request for a handler, as the core hands it over.
func benchRequest(name string, body map[string]any) *core.Request {
	raw, _ := json.Marshal(body)
	return &core.Request{Operation: core.OpUpdate, Body: raw, Query: url.Values{}, Params: map[string]string{"name": name}}
}

var kib = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 1024)))

func BenchmarkEncryptAES256_1KiB(b *testing.B) {
	h := newHarness(b, nil)
	h.create("k", "aes256-gcm96")
	r := benchRequest("k", map[string]any{"plaintext": kib})
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.e.encrypt(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptAES256_1KiB(b *testing.B) {
	h := newHarness(b, nil)
	h.create("k", "aes256-gcm96")
	ct := h.ok(core.OpWrite, "encrypt/k", map[string]any{"plaintext": kib})["ciphertext"]
	r := benchRequest("k", map[string]any{"ciphertext": ct})
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.e.decrypt(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptAES256_1KiB_Parallel(b *testing.B) {
	h := newHarness(b, nil)
	h.create("k", "aes256-gcm96")
	b.SetBytes(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest("k", map[string]any{"plaintext": kib})
		for pb.Next() {
			if _, err := h.e.encrypt(b.Context(), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchSign(b *testing.B, typ string) {
	h := newHarness(b, nil)
	h.create("k", typ)
	r := benchRequest("k", map[string]any{"input": base64.StdEncoding.EncodeToString([]byte("a message of a typical size, such as a token"))})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.e.sign(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignEd25519(b *testing.B)   { benchSign(b, "ed25519") }
func BenchmarkSignECDSAP256(b *testing.B) { benchSign(b, "ecdsa-p256") }
