package barrier

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/cofferhq/coffer/internal/storage"
)

// maxTxnAttempts bounds how often Txn re-reads and retries when a record it
// checked changed ciphertext, but perhaps not plaintext, before commit.
const maxTxnAttempts = 4

// open decrypts the record stored for logical key. The caller holds b.mu
// shared and has checked the barrier is unsealed.
func (b *Barrier) open(key string, rec []byte) ([]byte, error) {
	id, err := recordTerm(key, rec)
	if err != nil {
		return nil, err
	}
	t := b.k.terms[id]
	if t == nil {
		return nil, fmt.Errorf("%w: %q is sealed under term %d, which the keyring does not have (active term %d); was the keyring restored from an older backup than the data?", ErrUnknownTerm, key, id, b.k.active.id)
	}
	return openRecord(t.aead, key, rec)
}

// Get returns the plaintext stored at logical key, or an error wrapping
// storage.ErrNotFound, ErrDecrypt or ErrUnknownTerm.
func (b *Barrier) Get(ctx context.Context, key string) ([]byte, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return nil, ErrSealed
	}
	rec, err := b.phys.Get(ctx, dataPrefix+key)
	if err != nil {
		return nil, fmt.Errorf("barrier: get %q: %w", key, err)
	}
	return b.open(key, rec)
}

// Put seals value under the active term and stores it at logical key.
func (b *Barrier) Put(ctx context.Context, key string, value []byte) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return ErrSealed
	}
	rec, err := b.encrypt(ctx, key, value)
	if err != nil {
		return fmt.Errorf("barrier: put %q: %w", key, err)
	}
	if err := b.phys.Put(ctx, dataPrefix+key, rec); err != nil {
		return fmt.Errorf("barrier: put %q: %w", key, err)
	}
	return nil
}

// Delete removes logical key. Deleting a missing key is not an error.
func (b *Barrier) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return ErrSealed
	}
	if err := b.phys.Delete(ctx, dataPrefix+key); err != nil {
		return fmt.Errorf("barrier: delete %q: %w", key, err)
	}
	return nil
}

// List returns the sorted immediate children of logical prefix. Keys are
// not encrypted, so this is the physical listing of "v/"+prefix.
func (b *Barrier) List(ctx context.Context, prefix string) ([]string, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return nil, ErrSealed
	}
	out, err := b.phys.List(ctx, dataPrefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("barrier: list %q: %w", prefix, err)
	}
	return out, nil
}

// Txn applies ops atomically on logical keys. Checks compare plaintext: a
// CheckEqual holds when the stored value decrypts to op.Value, whatever
// ciphertext (term, nonce) holds it. Txn reads and decrypts each checked
// key, compares, and then issues one physical Txn that checks each key
// still holds the exact ciphertext it read and applies the sealed writes;
// so the whole is atomic. If a checked ciphertext changed before commit,
// Txn evaluates its checks again, since the change may be Reencrypt
// rewriting the same plaintext; a *storage.ConflictError, naming the
// logical key, means a check really did not hold.
func (b *Barrier) Txn(ctx context.Context, ops []storage.Op) error {
	if err := storage.ValidateOps(ops); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return ErrSealed
	}
	for attempt := 1; ; attempt++ {
		phys, err := b.physicalOps(ctx, ops)
		if err != nil {
			return err
		}
		err = b.phys.Txn(ctx, phys)
		if err == nil {
			return nil
		}
		ce, ok := errors.AsType[*storage.ConflictError](err)
		if !ok {
			return fmt.Errorf("barrier: txn: %w", err)
		}
		if attempt == maxTxnAttempts {
			return &storage.ConflictError{Key: strings.TrimPrefix(ce.Key, dataPrefix)}
		}
	}
}

// physicalOps evaluates the checks of ops against current plaintexts and
// translates ops to physical ones. A check that does not hold gives a
// *storage.ConflictError. The caller holds b.mu shared.
func (b *Barrier) physicalOps(ctx context.Context, ops []storage.Op) ([]storage.Op, error) {
	out := make([]storage.Op, len(ops))
	// Checks first, so a failing one costs no encryptions.
	for i, op := range ops {
		if op.Kind != storage.OpCheck {
			continue
		}
		pk := dataPrefix + op.Key
		rec, err := b.phys.Get(ctx, pk)
		missing := errors.Is(err, storage.ErrNotFound)
		if err != nil && !missing {
			return nil, fmt.Errorf("barrier: txn: check %q: %w", op.Key, err)
		}
		if op.Absent {
			if !missing {
				return nil, &storage.ConflictError{Key: op.Key}
			}
			out[i] = storage.CheckAbsent(pk)
			continue
		}
		if missing {
			return nil, &storage.ConflictError{Key: op.Key}
		}
		plain, err := b.open(op.Key, rec)
		if err != nil {
			return nil, err
		}
		equal := subtle.ConstantTimeCompare(plain, op.Value) == 1
		clear(plain)
		if !equal {
			return nil, &storage.ConflictError{Key: op.Key}
		}
		out[i] = storage.CheckEqual(pk, rec)
	}
	for i, op := range ops {
		pk := dataPrefix + op.Key
		switch op.Kind {
		case storage.OpPut:
			rec, err := b.encrypt(ctx, op.Key, op.Value)
			if err != nil {
				return nil, fmt.Errorf("barrier: txn: put %q: %w", op.Key, err)
			}
			out[i] = storage.Put(pk, rec)
		case storage.OpDelete:
			out[i] = storage.Delete(pk)
		}
	}
	return out, nil
}
