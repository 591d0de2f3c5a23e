package transit

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strconv"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
)

// export answers GET export/<kind>/<name>[/<version>] for the kinds
// encryption-key, signing-key, hmac-key (exportable keys only) and
// public-key, in Vault's encodings: base64 for raw and ed25519 keys, PEM
// (PKCS#1 for RSA, SEC 1 for ECDSA, PKIX for public keys) otherwise.
func (e *Engine) export(ctx context.Context, r *core.Request) (*core.Response, error) {
	kind := r.Params["kind"]
	name, k, err := e.existing(ctx, r)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "encryption-key":
		if !k.typ.canEncrypt() {
			return nil, core.BadRequest("encryption key not supported by key type %v", k.typ)
		}
	case "signing-key":
		if !k.typ.canSign() {
			return nil, core.BadRequest("signing key not supported by key type %v", k.typ)
		}
	case "hmac-key":
	case "public-key":
		if k.typ.symmetric() {
			return nil, core.BadRequest("public key not available for key type %v", k.typ)
		}
	default:
		return nil, core.BadRequest("invalid export type %s: use encryption-key, signing-key, hmac-key or public-key", field.Quote(kind))
	}
	if kind != "public-key" && !k.exportable {
		return nil, core.BadRequest("private key material is not exportable: create the key with exportable=true")
	}
	versions := k.versions
	if s, ok := r.Params["version"]; ok && s != "latest" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > k.latest() {
			return nil, core.BadRequest("invalid version %s: key %s has versions 1 to %d", field.Quote(s), name, k.latest())
		}
		versions = versions[n-1 : n]
	} else if ok {
		versions = versions[k.latest()-1:]
	}
	keys := make(map[string]string, len(versions))
	for _, v := range versions {
		s, err := exportOne(k.typ, kind, v)
		if err != nil {
			return nil, err
		}
		keys[strconv.Itoa(v.n)] = s
	}
	return &core.Response{Data: map[string]any{"name": name, "type": k.typ.String(), "keys": keys}}, nil
}

func exportOne(t keyType, kind string, v *version) (string, error) {
	if kind == "hmac-key" {
		return base64.StdEncoding.EncodeToString(v.hmacKey.bytes()), nil
	}
	if t.symmetric() {
		return base64.StdEncoding.EncodeToString(v.key.bytes()), nil
	}
	if kind == "public-key" {
		return publicKey(t, v.signer.Public())
	}
	switch priv := v.signer.(type) {
	case ed25519.PrivateKey:
		return base64.StdEncoding.EncodeToString(priv), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(priv)
		if err != nil {
			return "", err
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), nil
	case *rsa.PrivateKey:
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})), nil
	}
	return "", core.BadRequest("key type %v cannot be exported", t)
}
