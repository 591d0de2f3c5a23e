// Package storage defines coffer's physical storage interface and the pieces
// every backend shares: sentinel errors, the transaction operation type, key
// validation and a prefixing view.
//
// A Backend is a flat, ordered key/value space. Keys are slash-separated
// paths ("sys/mounts", "logical/3f2a/data/app"); a key never ends in "/".
// List returns the immediate children of a prefix, sorted, with folders
// marked by a trailing "/". Txn applies a list of operations atomically:
// either every check holds and every write is applied, or nothing changes.
//
// Backends live in subpackages (storage/bolt, storage/inmem) and all run the
// contract suite in storage/storagetest.
package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned by Get when no value is stored at the key.
var ErrNotFound = errors.New("storage: key not found")

// ErrConflict is returned (wrapped in a *ConflictError) by Txn when a
// compare-and-set check does not hold. Nothing was written.
var ErrConflict = errors.New("storage: check-and-set conflict")

// ErrInvalidKey is returned (wrapped) for keys that are empty, end in "/",
// contain empty segments or NUL bytes, or exceed MaxKeyLen.
var ErrInvalidKey = errors.New("storage: invalid key")

// MaxKeyLen bounds key length in bytes.
const MaxKeyLen = 4096

// Backend is a physical store. Implementations are safe for concurrent use.
//
// Every method honours ctx: when ctx is done before the operation takes
// effect, the method returns an error wrapping ctx.Err() and nothing was
// written. A write that has already reached the store's commit runs to
// completion and reports its real result.
type Backend interface {
	// Get returns the value at key, or an error wrapping ErrNotFound. The
	// returned slice is the caller's own copy.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value at key, replacing any previous value. The write is
	// durable when Put returns nil. A nil value is stored as an empty one.
	// The backend keeps no reference to value after Put returns.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the sorted immediate children of prefix. prefix is ""
	// or ends in "/". A child that has descendants is returned once, with
	// a trailing "/"; a key that is both a value and a folder appears in
	// both forms ("a" and "a/"). A prefix with no children gives an empty,
	// non-nil slice and no error.
	List(ctx context.Context, prefix string) ([]string, error)
	// Txn applies ops atomically, in order. Check ops are evaluated against
	// the state before any op of this Txn is applied. If a check fails,
	// nothing is written and the error is a *ConflictError naming the first
	// failing check's key (it wraps ErrConflict). Ops are validated with
	// ValidateOps first. An empty ops list is a no-op.
	Txn(ctx context.Context, ops []Op) error
}

// Closer is implemented by backends that hold resources (files, pools).
type Closer interface {
	Close() error
}

// OpKind says what an Op does.
type OpKind uint8

const (
	// OpPut stores Op.Value at Op.Key.
	OpPut OpKind = iota + 1
	// OpDelete removes Op.Key.
	OpDelete
	// OpCheck asserts the current value at Op.Key: equal to Op.Value, or,
	// when Op.Absent is true, that the key does not exist.
	OpCheck
)

func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpCheck:
		return "check"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one operation in a transaction.
type Op struct {
	Kind   OpKind
	Key    string
	Value  []byte
	Absent bool // OpCheck only: the key must not exist
}

// Put, Delete, CheckEqual and CheckAbsent build Ops.
func Put(key string, value []byte) Op    { return Op{Kind: OpPut, Key: key, Value: value} }
func Delete(key string) Op               { return Op{Kind: OpDelete, Key: key} }
func CheckEqual(key string, v []byte) Op { return Op{Kind: OpCheck, Key: key, Value: v} }
func CheckAbsent(key string) Op          { return Op{Kind: OpCheck, Key: key, Absent: true} }

// ConflictError reports which check of a Txn failed. It wraps ErrConflict.
type ConflictError struct {
	Key string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("storage: check-and-set conflict at %q", e.Key)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// ValidateKey reports whether key is usable as a storage key.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key is %d bytes, longer than %d", ErrInvalidKey, len(key), MaxKeyLen)
	case strings.HasSuffix(key, "/"):
		return fmt.Errorf("%w: key %q ends in /", ErrInvalidKey, key)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w: key %q starts with /", ErrInvalidKey, key)
	case strings.Contains(key, "//"):
		return fmt.Errorf("%w: key %q has an empty segment", ErrInvalidKey, key)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: key contains a NUL byte", ErrInvalidKey)
	}
	return nil
}

// ValidatePrefix reports whether prefix is usable with List.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("%w: list prefix %q must be empty or end in /", ErrInvalidKey, prefix)
	}
	return ValidateKey(strings.TrimSuffix(prefix, "/"))
}

// ValidateOps reports whether ops is usable with Txn: every op has a known
// kind and a valid key.
func ValidateOps(ops []Op) error {
	for i, op := range ops {
		switch op.Kind {
		case OpPut, OpDelete, OpCheck:
		default:
			return fmt.Errorf("storage: txn op %d: unknown kind %v", i, op.Kind)
		}
		if err := ValidateKey(op.Key); err != nil {
			return fmt.Errorf("txn op %d (%v): %w", i, op.Kind, err)
		}
	}
	return nil
}
