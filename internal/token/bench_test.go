package token

import (
	"testing"
	"time"
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := New(b.Context(), newBackend(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkCreate(b *testing.B) {
	s := benchStore(b)
	req := CreateRequest{Policies: []string{"default", "app"}, Meta: map[string]string{"team": "a"}, TTL: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Create(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateChild(b *testing.B) {
	s := benchStore(b)
	_, parent, err := s.Create(b.Context(), CreateRequest{Policies: []string{"root"}})
	if err != nil {
		b.Fatal(err)
	}
	req := CreateRequest{Policies: []string{"default"}, TTL: time.Hour, Parent: parent}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Create(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLookup looks tokens up among 10,000 stored ones; depth is the
// number of ancestors each token has.
func benchLookup(b *testing.B, depth int) {
	s := benchStore(b)
	var parent *Entry
	for range depth {
		_, e, err := s.Create(b.Context(), CreateRequest{Parent: parent, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		parent = e
	}
	toks := make([]string, 10000)
	for i := range toks {
		tok, _, err := s.Create(b.Context(), CreateRequest{Parent: parent, Policies: []string{"default"}, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Lookup(b.Context(), toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkLookup(b *testing.B)       { benchLookup(b, 0) }
func BenchmarkLookupChild(b *testing.B)  { benchLookup(b, 1) }
func BenchmarkLookupDepth3(b *testing.B) { benchLookup(b, 3) }

func BenchmarkLookupUnknown(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lookup(b.Context(), "s.AAAAAAAAAAAAAAAAAAAAAAAA"); err == nil {
			b.Fatal("found")
		}
	}
}

func BenchmarkUse(b *testing.B) {
	s := benchStore(b)
	_, e, err := s.Create(b.Context(), CreateRequest{NumUses: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Use(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
}
