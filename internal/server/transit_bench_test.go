package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkTransitHTTP measures transit encrypt and decrypt of 1 KiB
// through the full HTTP stack on bbolt, 16 concurrent clients (the
// issue's bar: at least 8,000 encrypts a second).
func BenchmarkTransitHTTP(b *testing.B) {
	addr, tok := newBenchServer(b)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	do(b, c, "POST", addr+"/v1/sys/mounts/transit", tok, `{"type":"transit"}`)
	do(b, c, "POST", addr+"/v1/transit/keys/bench", tok, `{}`)
	pt := `{"plaintext":"` + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 1024))) + `"}`

	req, _ := http.NewRequest("POST", addr+"/v1/transit/encrypt/bench", strings.NewReader(pt))
	req.Header.Set("X-Vault-Token", tok)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var env struct {
		Data struct {
			Ciphertext string `json:"ciphertext"`
		} `json:"data"`
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&env); err != nil || env.Data.Ciphertext == "" {
		b.Fatalf("encrypt: %s %v", raw, err)
	}
	ct := `{"ciphertext":"` + env.Data.Ciphertext + `"}`

	run := func(path, body string) func(*testing.B) {
		return func(b *testing.B) {
			defer cpuPerOp(b)()
			b.SetBytes(1024)
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do(b, c, "POST", addr+path, tok, body)
				}
			})
		}
	}
	b.Run("encrypt-1KiB", run("/v1/transit/encrypt/bench", pt))
	b.Run("decrypt-1KiB", run("/v1/transit/decrypt/bench", ct))
}
