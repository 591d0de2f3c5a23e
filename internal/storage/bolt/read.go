package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cofferhq/coffer/internal/storage"
)

// Get returns a copy of the value at key, read in a read-only transaction.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := b.view(func(bk *bbolt.Bucket) error {
		v, ok := lookup(bk, []byte(key))
		if !ok {
			return fmt.Errorf("bolt: get %q: %w", key, storage.ErrNotFound)
		}
		// v points into the mmap and dies with the transaction.
		out = append([]byte{}, v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// List returns the sorted immediate children of prefix. It seeks to
// prefix, and past each child folder's subtree, so its cost grows with the
// number of children, not the number of keys below them.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []string{}
	err := b.view(func(bk *bbolt.Bucket) error {
		p := []byte(prefix)
		var skip []byte
		c := bk.Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); {
			rest := k[len(p):]
			slash := bytes.IndexByte(rest, '/')
			if slash < 0 {
				out = append(out, string(rest))
				k, _ = c.Next()
				continue
			}
			// rest[:slash+1] is a folder. Every key below it starts with
			// prefix+rest[:slash]+"/"; the same with "/" replaced by "0",
			// the next byte, is the least key above all of them.
			out = append(out, string(rest[:slash+1]))
			skip = append(append(skip[:0], k[:len(p)+slash]...), '0')
			k, _ = c.Seek(skip)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// view runs fn on the bucket in a read-only transaction.
func (b *Backend) view(fn func(*bbolt.Bucket) error) error {
	err := b.db.View(func(tx *bbolt.Tx) error {
		return fn(tx.Bucket(bucketName))
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
