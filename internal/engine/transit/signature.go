package transit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // registers crypto.SHA1 for hash_algorithm=sha1
	_ "crypto/sha3" // registers crypto.SHA3_* for hash_algorithm=sha3-*
	_ "crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"strconv"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
)

// hashes are the hash_algorithm names Vault accepts. "none" (0) is for
// RSA PKCS#1 v1.5 signatures of an already-encoded digest.
var hashes = map[string]crypto.Hash{
	"sha1":     crypto.SHA1,
	"sha2-224": crypto.SHA224,
	"sha2-256": crypto.SHA256,
	"sha2-384": crypto.SHA384,
	"sha2-512": crypto.SHA512,
	"sha3-224": crypto.SHA3_224,
	"sha3-256": crypto.SHA3_256,
	"sha3-384": crypto.SHA3_384,
	"sha3-512": crypto.SHA3_512,
	"none":     0,
}

func parseHash(name string) (crypto.Hash, error) {
	if name == "" {
		return crypto.SHA256, nil
	}
	h, ok := hashes[name]
	if !ok || h != 0 && !h.Available() {
		return 0, core.BadRequest("unsupported hash algorithm %s: use sha1, sha2-224, sha2-256, sha2-384, sha2-512, sha3-224, sha3-256, sha3-384, sha3-512 or none", field.Quote(name))
	}
	return h, nil
}

// signOpts are a sign or verify request's choices.
type signOpts struct {
	hash      crypto.Hash // 0: none
	hashName  string
	prehashed bool
	pss       bool // RSA: PSS (default) or PKCS#1 v1.5
	saltLen   int  // PSS salt length (rsa.PSSSaltLength* or a byte count)
	jws       bool // raw r||s for ECDSA, base64url in the value
}

// encoding is the base64 alphabet of signature values.
func (o signOpts) encoding() *base64.Encoding {
	if o.jws {
		return base64.RawURLEncoding
	}
	return base64.StdEncoding
}

// parseSignOpts reads hash_algorithm (or the route's {algorithm}, or the
// legacy "algorithm"), prehashed, signature_algorithm,
// marshaling_algorithm and salt_length.
func parseSignOpts(in *field.Set, routeAlg string, t keyType) (signOpts, error) {
	var o signOpts
	name := routeAlg
	for _, f := range []string{"hash_algorithm", "algorithm"} {
		if s, ok, err := in.String(f); err != nil {
			return o, err
		} else if ok && s != "" && name == "" {
			name = s
		}
	}
	h, err := parseHash(name)
	if err != nil {
		return o, err
	}
	o.hash, o.hashName = h, name
	if o.hashName == "" {
		o.hashName = "sha2-256"
	}
	if o.prehashed, _, err = in.Bool("prehashed"); err != nil {
		return o, err
	}
	sigAlg, _, err := in.String("signature_algorithm")
	if err != nil {
		return o, err
	}
	switch sigAlg {
	case "", "pss":
		o.pss = true
	case "pkcs1v15":
	default:
		return o, core.BadRequest("unsupported signature algorithm %s: use pss or pkcs1v15", field.Quote(sigAlg))
	}
	marshal, _, err := in.String("marshaling_algorithm")
	if err != nil {
		return o, err
	}
	switch marshal {
	case "", "asn1":
	case "jws":
		o.jws = true
	default:
		return o, core.BadRequest("unsupported marshaling algorithm %s: use asn1 or jws", field.Quote(marshal))
	}
	salt, _, err := in.String("salt_length")
	if err != nil {
		return o, err
	}
	switch salt {
	case "", "auto":
		o.saltLen = rsa.PSSSaltLengthAuto
	case "hash":
		o.saltLen = rsa.PSSSaltLengthEqualsHash
	default:
		n, err := strconv.Atoi(salt)
		if err != nil || n < 0 {
			return o, core.BadRequest("invalid salt_length %s: use auto, hash or a number of bytes", field.Quote(salt))
		}
		o.saltLen = n
	}
	switch {
	case o.hash == 0 && !(t.rsa() && !o.pss):
		return o, core.BadRequest("hash algorithm none is only for RSA keys with signature_algorithm=pkcs1v15")
	case t == typeED25519 && o.prehashed && o.hash != crypto.SHA512:
		return o, core.BadRequest("a prehashed ed25519 signature (Ed25519ph) needs hash_algorithm=sha2-512")
	}
	return o, nil
}

// digest returns what is signed: the input itself for ed25519 (which
// hashes internally) and for prehashed input (checked for length), else
// the input's hash.
func (o signOpts) digest(t keyType, input []byte) ([]byte, error) {
	if t == typeED25519 && !o.prehashed || o.hash == 0 {
		return input, nil
	}
	if o.prehashed {
		if len(input) != o.hash.Size() {
			return nil, core.BadRequest("prehashed input is %d bytes, but a %s digest is %d bytes", len(input), o.hashName, o.hash.Size())
		}
		return input, nil
	}
	h := o.hash.New()
	h.Write(input)
	return h.Sum(nil), nil
}

// signer returns the private key of version v for context: the version's
// own, or a derived ed25519 key.
func (k *key) signerFor(v *version, context []byte) (crypto.Signer, error) {
	if k.derived {
		return deriveED25519(v, context)
	}
	return v.signer, nil
}

// sign signs input with version v.
func (k *key) sign(v *version, input, context []byte, o signOpts) ([]byte, crypto.PublicKey, error) {
	s, err := k.signerFor(v, context)
	if err != nil {
		return nil, nil, err
	}
	d, err := o.digest(k.typ, input)
	if err != nil {
		return nil, nil, err
	}
	var sig []byte
	switch priv := s.(type) {
	case ed25519.PrivateKey:
		if o.prehashed {
			sig, err = priv.Sign(nil, d, &ed25519.Options{Hash: crypto.SHA512})
		} else {
			sig = ed25519.Sign(priv, d)
		}
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, priv, d)
		if err == nil && o.jws {
			sig, err = asn1ToJWS(sig, (priv.Curve.Params().BitSize+7)/8)
		}
	case *rsa.PrivateKey:
		if o.pss {
			sig, err = rsa.SignPSS(rand.Reader, priv, o.hash, d, &rsa.PSSOptions{SaltLength: o.saltLen, Hash: o.hash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, priv, o.hash, d)
		}
		if err != nil {
			return nil, nil, core.BadRequest("cannot sign: %v", err)
		}
	default:
		return nil, nil, core.BadRequest("key type %v does not support signing", k.typ)
	}
	if err != nil {
		return nil, nil, err
	}
	return sig, s.Public(), nil
}

// verify checks sig over input with version v. A signature that is not
// well-formed simply does not verify.
func (k *key) verify(v *version, input, sig, context []byte, o signOpts) (bool, error) {
	s, err := k.signerFor(v, context)
	if err != nil {
		return false, err
	}
	d, err := o.digest(k.typ, input)
	if err != nil {
		return false, err
	}
	switch pub := s.Public().(type) {
	case ed25519.PublicKey:
		if o.prehashed {
			return ed25519.VerifyWithOptions(pub, d, sig, &ed25519.Options{Hash: crypto.SHA512}) == nil, nil
		}
		return ed25519.Verify(pub, d, sig), nil
	case *ecdsa.PublicKey:
		if o.jws {
			if sig, err = jwsToASN1(sig, (pub.Curve.Params().BitSize+7)/8); err != nil {
				return false, nil
			}
		}
		return ecdsa.VerifyASN1(pub, d, sig), nil
	case *rsa.PublicKey:
		if o.pss {
			return rsa.VerifyPSS(pub, o.hash, d, sig, &rsa.PSSOptions{SaltLength: o.saltLen, Hash: o.hash}) == nil, nil
		}
		return rsa.VerifyPKCS1v15(pub, o.hash, d, sig) == nil, nil
	}
	return false, core.BadRequest("key type %v does not support signing", k.typ)
}

type ecdsaSig struct{ R, S *big.Int }

// asn1ToJWS turns a DER ECDSA signature into JWS's fixed-size r||s.
func asn1ToJWS(der []byte, size int) ([]byte, error) {
	var s ecdsaSig
	if _, err := asn1.Unmarshal(der, &s); err != nil {
		return nil, err
	}
	out := make([]byte, 2*size)
	s.R.FillBytes(out[:size])
	s.S.FillBytes(out[size:])
	return out, nil
}

func jwsToASN1(raw []byte, size int) ([]byte, error) {
	if len(raw) != 2*size {
		return nil, core.BadRequest("invalid signature")
	}
	return asn1.Marshal(ecdsaSig{R: new(big.Int).SetBytes(raw[:size]), S: new(big.Int).SetBytes(raw[size:])})
}

// mac returns the HMAC of input under version v's HMAC key.
func mac(v *version, h crypto.Hash, input []byte) []byte {
	m := hmac.New(h.New, v.hmacKey.bytes())
	m.Write(input)
	return m.Sum(nil)
}
