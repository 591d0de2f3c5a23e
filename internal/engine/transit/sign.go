package transit

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/base64"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
)

// signResult answers sign.
type signResult struct {
	Signature  string `json:"signature,omitempty"`
	KeyVersion int    `json:"key_version,omitempty"`
	// PublicKey is the derived public key of a derived ed25519 key.
	PublicKey []byte `json:"public_key,omitempty"`
	status
}

// verifyResult answers verify.
type verifyResult struct {
	Valid bool `json:"valid"`
	status
}

// hmacResult answers hmac.
type hmacResult struct {
	HMAC string `json:"hmac,omitempty"`
	status
}

// sign answers POST sign/<name>[/<hash>]: input (base64), context,
// key_version, hash_algorithm, prehashed, signature_algorithm,
// marshaling_algorithm, salt_length, or batch_input of {input, context}.
func (e *Engine) sign(ctx context.Context, r *core.Request) (*core.Response, error) {
	k, in, items, batch, err := e.prepare(ctx, r, "signing key not found")
	if err != nil {
		return nil, err
	}
	if !k.typ.canSign() {
		return nil, core.BadRequest("key type %v does not support signing", k.typ)
	}
	o, err := parseSignOpts(in, r.Params["algorithm"], k.typ)
	if err != nil {
		return nil, err
	}
	v, err := k.writeVersionOf(in)
	if err != nil {
		return nil, err
	}
	return answer(ctx, e.log, r, in, items, batch, func(it *field.Set) (signResult, error) {
		input, err := e.input(it, "input", "missing input to sign")
		if err != nil {
			return signResult{}, err
		}
		context, err := e.optionalBase64(it, "context")
		if err != nil {
			return signResult{}, err
		}
		sig, pub, err := k.sign(v, input, context, o)
		if err != nil {
			return signResult{}, err
		}
		res := signResult{Signature: formatVersioned(v.n, sig, o.encoding()), KeyVersion: v.n}
		if k.derived {
			res.PublicKey = pub.(ed25519.PublicKey)
		}
		return res, nil
	})
}

// verify answers POST verify/<name>[/<hash>]: input with signature or
// hmac, and the options sign takes, or batch_input of such items.
// "valid" is false for a signature that does not match; a malformed
// value, or one of a version the key does not allow, is an error.
func (e *Engine) verify(ctx context.Context, r *core.Request) (*core.Response, error) {
	k, in, items, batch, err := e.prepare(ctx, r, "signature verification key not found")
	if err != nil {
		return nil, err
	}
	o, err := parseSignOpts(in, r.Params["algorithm"], k.typ)
	if err != nil {
		return nil, err
	}
	return answer(ctx, e.log, r, in, items, batch, func(it *field.Set) (verifyResult, error) {
		input, err := e.input(it, "input", "missing input to verify")
		if err != nil {
			return verifyResult{}, err
		}
		hasSig, hasMAC := it.Has("signature"), it.Has("hmac")
		switch {
		case hasSig && hasMAC:
			return verifyResult{}, core.BadRequest("provide either signature or hmac, not both")
		case hasMAC:
			ok, err := e.verifyMAC(k, it, input, o)
			return verifyResult{Valid: ok}, err
		case !hasSig:
			return verifyResult{}, core.BadRequest("missing signature or hmac to verify")
		}
		if !k.typ.canSign() {
			return verifyResult{}, core.BadRequest("key type %v does not support signing: verify an hmac instead", k.typ)
		}
		s, err := e.versioned(it, "signature", "missing signature or hmac to verify")
		if err != nil {
			return verifyResult{}, err
		}
		n, sig, err := parseVersioned(s, "signature", o.encoding())
		if err != nil {
			return verifyResult{}, err
		}
		v, err := k.readVersion(n, "signature")
		if err != nil {
			return verifyResult{}, err
		}
		context, err := e.optionalBase64(it, "context")
		if err != nil {
			return verifyResult{}, err
		}
		ok, err := k.verify(v, input, sig, context, o)
		return verifyResult{Valid: ok}, err
	})
}

func (e *Engine) verifyMAC(k *key, it *field.Set, input []byte, o signOpts) (bool, error) {
	if o.hash == 0 {
		return false, core.BadRequest("hash algorithm none cannot be used for an hmac")
	}
	s, err := e.versioned(it, "hmac", "missing signature or hmac to verify")
	if err != nil {
		return false, err
	}
	n, want, err := parseVersioned(s, "hmac", base64.StdEncoding)
	if err != nil {
		return false, err
	}
	v, err := k.readVersion(n, "hmac")
	if err != nil {
		return false, err
	}
	return hmac.Equal(mac(v, o.hash, input), want), nil
}

// hmac answers POST hmac/<name>[/<hash>]: input (base64), key_version,
// algorithm (default sha2-256), or batch_input of {input}. Every key type
// has a per-version HMAC key.
func (e *Engine) hmac(ctx context.Context, r *core.Request) (*core.Response, error) {
	k, in, items, batch, err := e.prepare(ctx, r, "encryption key not found")
	if err != nil {
		return nil, err
	}
	name := r.Params["algorithm"]
	for _, f := range []string{"algorithm", "hash_algorithm"} {
		if s, ok, err := in.String(f); err != nil {
			return nil, err
		} else if ok && s != "" && name == "" {
			name = s
		}
	}
	h, err := parseHash(name)
	if err != nil {
		return nil, err
	}
	if h == crypto.Hash(0) {
		return nil, core.BadRequest("hash algorithm none cannot be used for an hmac")
	}
	v, err := k.writeVersionOf(in)
	if err != nil {
		return nil, err
	}
	return answer(ctx, e.log, r, in, items, batch, func(it *field.Set) (hmacResult, error) {
		input, err := e.input(it, "input", "missing input for HMAC")
		if err != nil {
			return hmacResult{}, err
		}
		return hmacResult{HMAC: formatVersioned(v.n, mac(v, h, input), base64.StdEncoding)}, nil
	})
}
