package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// NewView returns a Backend that stores every key under prefix in b: Put of
// "data/app" on a view with prefix "logical/3f2a/" writes
// "logical/3f2a/data/app". A view cannot reach keys outside its prefix.
//
// prefix must be empty or end in "/" and otherwise be a valid key; NewView
// panics if it is not, since a bad prefix is a programming error.
//
// The prefix counts against MaxKeyLen: through a view, keys longer than
// MaxKeyLen-len(prefix) are rejected by b with ErrInvalidKey.
//
// List results are names relative to the listed prefix, so they need no
// rewriting. A *ConflictError from Txn names the key as the view's caller
// wrote it, without the prefix. Views nest: a view of a view holds the
// combined prefix and calls b's backend directly.
func NewView(b Backend, prefix string) Backend {
	if err := ValidatePrefix(prefix); err != nil {
		panic(fmt.Sprintf("storage: NewView: %v", err))
	}
	if v, ok := b.(*view); ok {
		return &view{b: v.b, prefix: v.prefix + prefix}
	}
	return &view{b: b, prefix: prefix}
}

// view is a Backend scoped to a key prefix of another Backend.
type view struct {
	b      Backend
	prefix string // "" or ends in "/"
}

var _ Backend = (*view)(nil)

// Keys are validated before the prefix is added, so a caller's bad key is
// reported as the caller wrote it.

func (v *view) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	return v.b.Get(ctx, v.prefix+key)
}

func (v *view) Put(ctx context.Context, key string, value []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	return v.b.Put(ctx, v.prefix+key, value)
}

func (v *view) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	return v.b.Delete(ctx, v.prefix+key)
}

func (v *view) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	return v.b.List(ctx, v.prefix+prefix)
}

func (v *view) Txn(ctx context.Context, ops []Op) error {
	if err := ValidateOps(ops); err != nil {
		return err
	}
	mapped := make([]Op, len(ops))
	for i, op := range ops {
		op.Key = v.prefix + op.Key
		mapped[i] = op
	}
	err := v.b.Txn(ctx, mapped)
	if ce, ok := errors.AsType[*ConflictError](err); ok && strings.HasPrefix(ce.Key, v.prefix) {
		return &ConflictError{Key: strings.TrimPrefix(ce.Key, v.prefix)}
	}
	return err
}
