package barrier

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

// ErrSealed is returned by every logical operation, Rotate, KeyStatus and
// Reencrypt while the barrier is sealed.
var ErrSealed = errors.New("barrier: sealed")

// ErrNotInitialized is returned (wrapped) by Unseal when the physical store
// has no keyring: Initialize has not been run against it.
var ErrNotInitialized = errors.New("barrier: not initialized")

// ErrAlreadyInitialized is returned (wrapped) by Initialize when the
// physical store already has a keyring. Nothing is written.
var ErrAlreadyInitialized = errors.New("barrier: already initialized")

// ErrDecrypt is returned (wrapped) when a record fails to open: it was
// altered, truncated, copied from another path, or sealed under another
// key. Unseal returns it for a wrong root key.
var ErrDecrypt = errors.New("barrier: message authentication failed")

// ErrUnknownTerm is returned (wrapped) when a record names a key term the
// keyring does not have, as happens when the keyring is restored from a
// backup older than the data.
var ErrUnknownTerm = errors.New("barrier: unknown key term")

// Physical paths the barrier owns.
const (
	keyringPath = "barrier/keyring"
	dataPrefix  = "v/"
)

// Options configures a Barrier. The zero value is usable.
type Options struct {
	// Logger receives unseal, seal, rotation and re-encryption events. Log
	// records carry terms, counts and paths, never key material. Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock for key install times. Nil means time.Now.
	Now func() time.Time
}

// Barrier is the encrypted storage barrier over a physical Backend. It is
// itself a storage.Backend on logical keys: Get, Put, Delete, List and Txn
// map key k to the physical record at "v/"+k, sealing values on the way in
// and opening them on the way out. A new Barrier is sealed.
//
// A Barrier is safe for concurrent use.
type Barrier struct {
	phys storage.Backend
	log  *slog.Logger
	now  func() time.Time

	// mu guards k. Every logical operation holds it shared from the
	// moment it picks a key until its physical I/O returns. Unseal, Seal
	// and Rotate hold it exclusively, so they wait for operations in
	// flight: no operation uses a key after Seal zeroes it, and no write
	// sealed under an old term lands after Rotate returns (which is what
	// lets a single Reencrypt pass be complete).
	mu sync.RWMutex
	k  *keyState // nil while sealed

	// keyringMu serializes writes of the physical keyring, so a snapshot
	// taken later is never overwritten by one taken earlier, and guards
	// prog. Lock order: mu before keyringMu.
	keyringMu sync.Mutex
	prog      progress

	// pass is a one-slot semaphore held by the running Reencrypt pass.
	pass chan struct{}

	// encryptions counts records sealed since New, across terms, to pace
	// the best-effort persisting of the per-term counts (see flushEvery).
	encryptions atomic.Uint64
}

var _ storage.Backend = (*Barrier)(nil)

// keyState is the key material of an unsealed barrier. It sits behind one
// pointer so that even a misused fmt verb on a struct holding a Barrier
// (fmt dereferences one pointer level for a bad verb) prints addresses,
// never key bytes or AES key schedules.
type keyState struct {
	root     *secretKey       // the root key, copied at Unseal
	rootAEAD cipher.AEAD      // AES-256-GCM under root; seals the keyring
	terms    map[uint32]*term // every term in the keyring; replaced, never modified, under Barrier.mu
	active   *term            // terms[active term]; new records are sealed under it
}

// New returns a sealed Barrier over phys. It does no I/O.
func New(phys storage.Backend, opts Options) *Barrier {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Barrier{
		phys: phys,
		log:  log,
		now:  now,
		pass: make(chan struct{}, 1),
	}
}

// GenerateKey returns a new random 32-byte key, suitable as a root key.
func GenerateKey() ([]byte, error) {
	k := make([]byte, keyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("barrier: generate key: %w", err)
	}
	return k, nil
}

func checkRootKey(op string, rootKey []byte) error {
	if len(rootKey) != keyLen {
		return fmt.Errorf("barrier: %s: root key is %d bytes, want %d", op, len(rootKey), keyLen)
	}
	return nil
}

// Initialized reports whether the physical store has a keyring.
func (b *Barrier) Initialized(ctx context.Context) (bool, error) {
	_, err := b.phys.Get(ctx, keyringPath)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("barrier: read keyring: %w", err)
}

// Initialize creates the keyring, with a fresh data key as term 1, sealed
// under rootKey (32 bytes). It fails with ErrAlreadyInitialized if a
// keyring exists. The barrier stays sealed: call Unseal with the same root
// key to use it. Initialize keeps no copy of rootKey.
func (b *Barrier) Initialize(ctx context.Context, rootKey []byte) error {
	if err := checkRootKey("initialize", rootKey); err != nil {
		return err
	}
	rootAEAD, err := newAEAD(rootKey)
	if err != nil {
		return fmt.Errorf("barrier: initialize: %w", err)
	}
	raw, err := GenerateKey()
	if err != nil {
		return fmt.Errorf("barrier: initialize: %w", err)
	}
	first := &term{id: 1, key: newSecretKey(raw), installed: b.now().UTC()}
	defer first.key.zero()

	plain, err := encodeKeyring(map[uint32]*term{1: first}, 1, progress{through: 1})
	if err != nil {
		return fmt.Errorf("barrier: initialize: %w", err)
	}
	defer clear(plain)
	rec, err := sealRecord(rand.Reader, rootAEAD, rootTerm, keyringPath, plain)
	if err != nil {
		return fmt.Errorf("barrier: initialize: %w", err)
	}
	err = b.phys.Txn(ctx, []storage.Op{storage.CheckAbsent(keyringPath), storage.Put(keyringPath, rec)})
	if errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("%w: a keyring exists at %q; unseal it, or start from empty storage", ErrAlreadyInitialized, keyringPath)
	}
	if err != nil {
		return fmt.Errorf("barrier: initialize: write keyring: %w", err)
	}
	b.log.Info("barrier initialized", "term", 1)
	return nil
}

// Unseal opens the keyring with rootKey and makes the barrier usable. A
// wrong root key gives an error wrapping ErrDecrypt; a store without a
// keyring, ErrNotInitialized. Unseal keeps its own copy of rootKey (to
// re-seal the keyring on Rotate) until Seal zeroes it. On an unsealed
// barrier it only checks that rootKey is the one in use.
func (b *Barrier) Unseal(ctx context.Context, rootKey []byte) error {
	if err := checkRootKey("unseal", rootKey); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.k != nil {
		if subtle.ConstantTimeCompare(rootKey, b.k.root.bytes()) != 1 {
			return fmt.Errorf("%w: unseal: the barrier is already unsealed with a different root key", ErrDecrypt)
		}
		return nil
	}

	rec, err := b.phys.Get(ctx, keyringPath)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: no keyring at %q; initialize the barrier first", ErrNotInitialized, keyringPath)
	}
	if err != nil {
		return fmt.Errorf("barrier: unseal: read keyring: %w", err)
	}
	root := newSecretKey(bytes.Clone(rootKey))
	rootAEAD, err := newAEAD(root.bytes())
	if err != nil {
		root.zero()
		return fmt.Errorf("barrier: unseal: %w", err)
	}
	plain, err := b.openKeyring(rootAEAD, rec)
	if err != nil {
		root.zero()
		return err
	}
	defer clear(plain)
	st, err := decodeKeyring(plain)
	if err != nil {
		root.zero()
		return fmt.Errorf("barrier: unseal: keyring: %w", err)
	}

	b.k = &keyState{root: root, rootAEAD: rootAEAD, terms: st.terms, active: st.terms[st.active]}
	b.keyringMu.Lock()
	b.prog = st.prog
	b.keyringMu.Unlock()
	b.log.Info("barrier unsealed", "term", st.active, "terms", len(st.terms), "reencrypted_through", st.prog.through)
	return nil
}

// openKeyring opens the physical keyring record with the root key.
func (b *Barrier) openKeyring(rootAEAD cipher.AEAD, rec []byte) ([]byte, error) {
	id, err := recordTerm(keyringPath, rec)
	if err != nil {
		return nil, err
	}
	if id != rootTerm {
		return nil, fmt.Errorf("%w: unseal: keyring record names term %d, want %d; it is corrupt", ErrDecrypt, id, rootTerm)
	}
	plain, err := openRecord(rootAEAD, keyringPath, rec)
	if err != nil {
		return nil, fmt.Errorf("%w: unseal: the root key does not open the keyring; check the unseal key or shares", ErrDecrypt)
	}
	return plain, nil
}

// Seal zeroes every key the barrier holds (each term's data key and its
// copy of the root key) and marks it sealed. It waits for operations in
// flight to finish; operations after it fail with ErrSealed. Encryption
// counts not yet persisted are lost (see KeyInfo). Sealing a sealed
// barrier does nothing.
//
// Go offers no way to zero the AES key schedules inside crypto/aes; Seal
// drops every reference to them so they become garbage.
func (b *Barrier) Seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.k == nil {
		return
	}
	for _, t := range b.k.terms {
		t.key.zero()
		t.aead = nil
	}
	b.k.root.zero()
	*b.k = keyState{}
	b.k = nil
	b.keyringMu.Lock()
	b.prog = progress{}
	b.keyringMu.Unlock()
	b.log.Info("barrier sealed")
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.k == nil
}
