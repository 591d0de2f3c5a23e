package barrier

import (
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/storagetest"
)

// newContractBarrier is an unsealed barrier over a fresh store, for the
// storage contract: on logical keys, a Barrier is a storage.Backend like
// any other.
func newContractBarrier(t *testing.T) storage.Backend {
	b := New(newPhys(), Options{})
	root, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Initialize(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestContract(t *testing.T) {
	storagetest.Run(t, newContractBarrier)
}

func FuzzContract(f *testing.F) {
	storagetest.Fuzz(f, newContractBarrier)
}
