package barrier

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
)

// The record benchmarks measure the envelope alone (header, nonce,
// AES-256-GCM, path as additional data); the Put and Get ones add the
// barrier's locking and a map-backed store.

func BenchmarkSealRecord1KiB(b *testing.B) {
	aead, _ := newAEAD(bytes.Repeat([]byte{1}, keyLen))
	plain := bytes.Repeat([]byte{'x'}, 1024)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := sealRecord(rand.Reader, aead, 1, "app/db/password", plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenRecord1KiB(b *testing.B) {
	aead, _ := newAEAD(bytes.Repeat([]byte{1}, keyLen))
	plain := bytes.Repeat([]byte{'x'}, 1024)
	rec, _ := sealRecord(rand.Reader, aead, 1, "app/db/password", plain)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := openRecord(aead, "app/db/password", rec); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBarrier(b *testing.B) *Barrier {
	bar := New(newPhys(), Options{})
	root, _ := GenerateKey()
	ctx := context.Background()
	if err := bar.Initialize(ctx, root); err != nil {
		b.Fatal(err)
	}
	if err := bar.Unseal(ctx, root); err != nil {
		b.Fatal(err)
	}
	return bar
}

func BenchmarkPut1KiB(b *testing.B) {
	bar := benchBarrier(b)
	plain := bytes.Repeat([]byte{'x'}, 1024)
	ctx := context.Background()
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if err := bar.Put(ctx, "app/db/password", plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet1KiB(b *testing.B) {
	bar := benchBarrier(b)
	ctx := context.Background()
	if err := bar.Put(ctx, "app/db/password", bytes.Repeat([]byte{'x'}, 1024)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := bar.Get(ctx, "app/db/password"); err != nil {
			b.Fatal(err)
		}
	}
}
