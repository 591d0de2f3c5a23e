package transit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
)

// cipherResult answers encrypt, rewrap and datakey.
type cipherResult struct {
	Ciphertext string `json:"ciphertext,omitempty"`
	KeyVersion int    `json:"key_version,omitempty"`
	// Plaintext is set by datakey/plaintext only.
	Plaintext string `json:"plaintext,omitempty"`
	status
}

// plainResult answers decrypt. plaintext is always present, as Vault
// sends it (empty on a failed batch item).
type plainResult struct {
	Plaintext string `json:"plaintext"`
	status
}

// encryptUpsert answers an encrypt for a key that does not exist yet
// (the caller may create): it creates the key, as Vault does, then
// encrypts.
func (e *Engine) encryptUpsert(ctx context.Context, r *core.Request) (*core.Response, error) {
	return e.doEncrypt(ctx, r, true)
}

// encrypt answers POST encrypt/<name>: plaintext (base64), context,
// associated_data, key_version, or batch_input of such items.
func (e *Engine) encrypt(ctx context.Context, r *core.Request) (*core.Response, error) {
	return e.doEncrypt(ctx, r, false)
}

func (e *Engine) doEncrypt(ctx context.Context, r *core.Request, upsert bool) (*core.Response, error) {
	name, in, err := decode(r)
	if err != nil {
		return nil, err
	}
	items, batch, err := e.items(in)
	if err != nil {
		return nil, err
	}
	in.Ignore("type", "convergent_encryption") // used only when creating
	k, err := e.loadKey(ctx, name)
	if errors.Is(err, errNoKey) && upsert {
		k, err = e.upsert(ctx, name, in, items[0])
	}
	if errors.Is(err, errNoKey) {
		return nil, core.BadRequest("encryption key not found")
	}
	if err != nil {
		return nil, err
	}
	if !k.typ.canEncrypt() {
		return nil, core.BadRequest("key type %v does not support encryption", k.typ)
	}
	return answer(ctx, e.log, r, in, items, batch, func(it *field.Set) (cipherResult, error) {
		pt, err := e.input(it, "plaintext", "missing plaintext to encrypt")
		if err != nil {
			return cipherResult{}, err
		}
		return e.seal(k, it, pt)
	})
}

// seal encrypts pt with the item's context, associated data and key
// version.
func (e *Engine) seal(k *key, it *field.Set, pt []byte) (cipherResult, error) {
	if err := unsupported(it); err != nil {
		return cipherResult{}, err
	}
	context, err := e.optionalBase64(it, "context")
	if err != nil {
		return cipherResult{}, err
	}
	ad, err := e.optionalBase64(it, "associated_data")
	if err != nil {
		return cipherResult{}, err
	}
	v, err := k.writeVersionOf(it)
	if err != nil {
		return cipherResult{}, err
	}
	ct, err := k.encrypt(v, pt, context, ad)
	if err != nil {
		return cipherResult{}, err
	}
	return cipherResult{Ciphertext: formatVersioned(v.n, ct, base64.StdEncoding), KeyVersion: v.n}, nil
}

// upsert creates the key an encrypt names: type (default aes256-gcm96),
// derived when the (first) item has a context, convergent_encryption.
func (e *Engine) upsert(ctx context.Context, name string, in, first *field.Set) (*key, error) {
	spec := keySpec{typ: defaultKeyType}
	if s, ok, err := in.String("type"); err != nil {
		return nil, err
	} else if ok {
		t, err := parseKeyType(s)
		if err != nil {
			return nil, core.BadRequest("%v", err)
		}
		if !t.canEncrypt() {
			return nil, core.BadRequest("key type %v not supported for this operation: create the key first", t)
		}
		spec.typ = t
	}
	conv, _, err := in.Bool("convergent_encryption")
	if err != nil {
		return nil, err
	}
	spec.convergent = conv
	spec.derived = first.Has("context")
	k, err := newKey(name, spec, e.now())
	if err != nil {
		return nil, err
	}
	k, _, err = e.createKey(ctx, k)
	if err == nil {
		e.log.Info("created key on encrypt", "key", name, "type", k.typ.String())
	}
	return k, err
}

// decrypt answers POST decrypt/<name>: ciphertext, context,
// associated_data, or batch_input of such items.
func (e *Engine) decrypt(ctx context.Context, r *core.Request) (*core.Response, error) {
	k, in, items, batch, err := e.prepare(ctx, r, "encryption key not found")
	if err != nil {
		return nil, err
	}
	if !k.typ.canEncrypt() {
		return nil, core.BadRequest("key type %v does not support decryption", k.typ)
	}
	return answer(ctx, e.log, r, in, items, batch, func(it *field.Set) (plainResult, error) {
		pt, err := e.open(k, it)
		if err != nil {
			return plainResult{}, err
		}
		return plainResult{Plaintext: base64.StdEncoding.EncodeToString(pt)}, nil
	})
}

// open decrypts the item's ciphertext.
func (e *Engine) open(k *key, it *field.Set) ([]byte, error) {
	s, err := e.versioned(it, "ciphertext", "missing ciphertext to decrypt")
	if err != nil {
		return nil, err
	}
	if err := unsupported(it); err != nil {
		return nil, err
	}
	context, err := e.optionalBase64(it, "context")
	if err != nil {
		return nil, err
	}
	ad, err := e.optionalBase64(it, "associated_data")
	if err != nil {
		return nil, err
	}
	n, ct, err := parseVersioned(s, "ciphertext", base64.StdEncoding)
	if err != nil {
		return nil, err
	}
	v, err := k.readVersion(n, "ciphertext")
	if err != nil {
		return nil, err
	}
	return k.decrypt(v, ct, context, ad)
}

// prepare decodes a request on an existing key and its items. notFound
// is Vault's message for a missing key.
func (e *Engine) prepare(ctx context.Context, r *core.Request, notFound string) (*key, *field.Set, []*field.Set, bool, error) {
	k, in, err := e.request(ctx, r, notFound)
	if err != nil {
		return nil, nil, nil, false, err
	}
	items, batch, err := e.items(in)
	if err != nil {
		return nil, nil, nil, false, err
	}
	return k, in, items, batch, nil
}

// request decodes a request on an existing key.
func (e *Engine) request(ctx context.Context, r *core.Request, notFound string) (*key, *field.Set, error) {
	name, in, err := decode(r)
	if err != nil {
		return nil, nil, err
	}
	k, err := e.loadKey(ctx, name)
	if errors.Is(err, errNoKey) {
		return nil, nil, core.BadRequest("%s", notFound)
	}
	if err != nil {
		return nil, nil, err
	}
	return k, in, nil
}

// rewrap answers POST rewrap/<name>: it decrypts each ciphertext and
// encrypts the plaintext again with the latest (or key_version) version,
// so the plaintext never leaves the server.
func (e *Engine) rewrap(ctx context.Context, r *core.Request) (*core.Response, error) {
	k, in, items, batch, err := e.prepare(ctx, r, "encryption key not found")
	if err != nil {
		return nil, err
	}
	if !k.typ.canEncrypt() {
		return nil, core.BadRequest("key type %v does not support encryption", k.typ)
	}
	return answer(ctx, e.log, r, in, items, batch, func(it *field.Set) (cipherResult, error) {
		pt, err := e.open(k, it)
		if err != nil {
			return cipherResult{}, err
		}
		defer clear(pt)
		return e.seal(k, it, pt)
	})
}

// datakey answers POST datakey/{plaintext,wrapped}/<name>: a fresh
// random key of bits (128, 256 or 512) encrypted under the named key,
// and for "plaintext" the key itself too.
func (e *Engine) datakey(ctx context.Context, r *core.Request) (*core.Response, error) {
	kind := r.Params["kind"]
	if kind != "plaintext" && kind != "wrapped" {
		return nil, core.BadRequest("invalid datakey type %s: use datakey/plaintext/<key> or datakey/wrapped/<key>", field.Quote(kind))
	}
	k, in, err := e.request(ctx, r, "encryption key not found")
	if err != nil {
		return nil, err
	}
	if !k.typ.canEncrypt() {
		return nil, core.BadRequest("key type %v does not support encryption", k.typ)
	}
	bits, ok, err := in.Int("bits")
	if err != nil {
		return nil, err
	}
	if !ok {
		bits = 256
	}
	if bits != 128 && bits != 256 && bits != 512 {
		return nil, core.BadRequest("invalid bits value %d: use 128, 256 or 512", bits)
	}
	dk := make([]byte, bits/8)
	defer clear(dk)
	if _, err := rand.Read(dk); err != nil {
		return nil, err
	}
	res, err := e.seal(k, in, dk)
	if err != nil {
		return nil, err
	}
	if kind == "plaintext" {
		res.Plaintext = base64.StdEncoding.EncodeToString(dk)
	}
	return &core.Response{Data: res, Warnings: in.Warnings(r)}, nil
}
