package kv

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
)

// value256 is a secret whose data encodes to 256 bytes.
func value256(b *testing.B) json.RawMessage {
	body := `{"data":{"value":"` + strings.Repeat("x", 256-len(`{"value":""}`)) + `"}}`
	data, _ := field.DecodeObject([]byte(body))
	if raw, _ := json.Marshal(data["data"]); len(raw) != 256 {
		b.Fatalf("value is %d bytes", len(raw))
	}
	return json.RawMessage(body)
}

func BenchmarkWrite256(b *testing.B) {
	h := newHarness(b, nil)
	r := &core.Request{Operation: core.OpUpdate, Body: value256(b), Query: url.Values{}, Params: map[string]string{"path": "bench/key"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.e.dataWrite(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead256(b *testing.B) {
	h := newHarness(b, nil)
	w := &core.Request{Operation: core.OpUpdate, Body: value256(b), Query: url.Values{}, Params: map[string]string{"path": "bench/key"}}
	if _, err := h.e.dataWrite(b.Context(), w); err != nil {
		b.Fatal(err)
	}
	r := &core.Request{Operation: core.OpRead, Query: url.Values{}, Params: map[string]string{"path": "bench/key"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.e.dataRead(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadParallel256(b *testing.B) {
	h := newHarness(b, nil)
	w := &core.Request{Operation: core.OpUpdate, Body: value256(b), Query: url.Values{}, Params: map[string]string{"path": "bench/key"}}
	if _, err := h.e.dataWrite(b.Context(), w); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := &core.Request{Operation: core.OpRead, Query: url.Values{}, Params: map[string]string{"path": "bench/key"}}
		for pb.Next() {
			if _, err := h.e.dataRead(b.Context(), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
