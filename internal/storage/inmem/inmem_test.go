package inmem_test

import (
	"fmt"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
	"github.com/cofferhq/coffer/internal/storage/storagetest"
)

func newBackend(*testing.T) storage.Backend { return inmem.New() }

func TestContract(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, newBackend)
}

func TestContractZeroValue(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(*testing.T) storage.Backend { return new(inmem.Backend) })
}

func FuzzBackend(f *testing.F) {
	storagetest.Fuzz(f, newBackend)
}

func BenchmarkGet(b *testing.B) {
	s := inmem.New()
	for i := range 1000 {
		if err := s.Put(b.Context(), fmt.Sprintf("bench/%04d", i), make([]byte, 128)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(b.Context(), fmt.Sprintf("bench/%04d", i%1000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkPut(b *testing.B) {
	s := inmem.New()
	v := make([]byte, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Put(b.Context(), fmt.Sprintf("bench/%04d", i%1000), v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
