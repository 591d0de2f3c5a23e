package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/cofferhq/coffer/internal/storage"
)

// cubbyholeBackend is per-token private storage: each token sees only
// its own subtree, keyed by the token's storage id.
type cubbyholeBackend struct {
	store storage.Backend
}

func (b *cubbyholeBackend) Routes() []Route {
	return []Route{{
		Pattern: "{path...}",
		Handlers: ops(OpRead, b.read, OpList, b.list, OpCreate, b.write, OpUpdate, b.write,
			OpDelete, b.delete),
	}}
}

func (b *cubbyholeBackend) key(r *Request) (string, error) {
	if r.Auth == nil || r.Auth.TokenID == "" {
		return "", ErrPermissionDenied
	}
	p := strings.Trim(r.Params["path"], "/")
	if err := storage.ValidateKey(p); p != "" && err != nil {
		return "", BadRequest("invalid path %q", p)
	}
	return r.Auth.TokenID + "/" + p, nil
}

func (b *cubbyholeBackend) read(ctx context.Context, r *Request) (*Response, error) {
	k, err := b.key(r)
	if err != nil {
		return nil, err
	}
	raw, err := b.store.Get(ctx, k)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, err
	}
	return &Response{Data: data}, nil
}

func (b *cubbyholeBackend) write(ctx context.Context, r *Request) (*Response, error) {
	k, err := b.key(r)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(k, "/") {
		return nil, BadRequest("missing path")
	}
	var data map[string]any
	if err := r.Decode(&data); err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, BadRequest("missing data fields")
	}
	raw, _ := json.Marshal(data)
	return nil, b.store.Put(ctx, k, raw)
}

func (b *cubbyholeBackend) delete(ctx context.Context, r *Request) (*Response, error) {
	k, err := b.key(r)
	if err != nil {
		return nil, err
	}
	return nil, b.store.Delete(ctx, k)
}

func (b *cubbyholeBackend) list(ctx context.Context, r *Request) (*Response, error) {
	k, err := b.key(r)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(k, "/") + "/"
	keys, err := b.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, ErrNotFound
	}
	return &Response{Data: map[string]any{"keys": keys}}, nil
}
