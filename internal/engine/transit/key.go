package transit

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/cofferhq/coffer/internal/core"
)

const redacted = "[redacted]"

// material holds secret key bytes: an AEAD key, an HMAC key or a PKCS#8
// private key. It redacts itself wherever it could be printed or encoded
// (fmt with any verb, slog, encoding/json, encoding.TextMarshaler); the
// bytes sit behind a pointer so reflection-based printing shows an
// address. zero overwrites them when the engine shuts down.
type material struct {
	b *[]byte
}

func newMaterial(b []byte) material { return material{b: &b} }

// bytes returns the key bytes, aliased.
func (m material) bytes() []byte {
	if m.b == nil {
		return nil
	}
	return *m.b
}

func (m material) zero() {
	if m.b != nil {
		clear(*m.b)
	}
}

func (material) String() string               { return redacted }
func (material) GoString() string             { return redacted }
func (material) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) }
func (material) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (material) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (material) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// version is one version of a key: its secret material and what is
// derived from it once (the AEAD of a non-derived symmetric key, the
// parsed private key of an asymmetric one). A version never changes.
type version struct {
	n       int
	created time.Time
	key     material // AEAD key or PKCS#8 private key
	hmacKey material // the version's HMAC key (every type has one)

	aead   cipher.AEAD   // symmetric, not derived
	signer crypto.Signer // asymmetric
}

// Versions and keys hold parsed private keys and AEAD states besides
// their material, so they print only what identifies them.
func (v *version) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "version %d %s", v.n, redacted) }
func (v *version) LogValue() slog.Value       { return slog.IntValue(v.n) }
func (k *key) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "key %q (%v, %d versions) %s", k.name, k.typ, len(k.versions), redacted)
}
func (k *key) LogValue() slog.Value { return slog.StringValue(k.name) }

// key is an immutable snapshot of a named key. Changes build a new
// snapshot that shares the unchanged versions.
type key struct {
	name            string
	typ             keyType
	derived         bool
	convergent      bool
	exportable      bool
	plaintextBackup bool
	deletionAllowed bool
	minDecrypt      int // at least 1
	minEncrypt      int // 0 means the latest version
	autoRotate      time.Duration
	versions        []*version // versions[i].n == i+1

	// raw is the stored record this snapshot was read from or written
	// as, for the CheckEqual guarding the next write.
	raw []byte
}

func (k *key) latest() int { return len(k.versions) }

// clone returns a copy of k that can be changed and stored.
func (k *key) clone() *key {
	c := *k
	c.versions = append([]*version(nil), k.versions...)
	c.raw = nil
	return &c
}

// keySpec is what a key is created with.
type keySpec struct {
	typ             keyType
	derived         bool
	convergent      bool
	exportable      bool
	plaintextBackup bool
	autoRotate      time.Duration
}

// check applies Vault's rules on which options go together.
func (s keySpec) check() error {
	switch {
	case s.convergent && !s.derived:
		return core.BadRequest("convergent encryption requires derivation to be enabled, so set derived=true too")
	case s.derived && !s.typ.canDerive():
		return core.BadRequest("key derivation not supported for keys of type %v", s.typ)
	case s.convergent && !s.typ.canConverge():
		return core.BadRequest("convergent encryption not supported for keys of type %v", s.typ)
	case s.autoRotate < 0 || s.autoRotate > 0 && s.autoRotate < MinAutoRotatePeriod:
		return core.BadRequest("auto rotate period must be 0 to disable or at least an hour, got %v", s.autoRotate)
	}
	return nil
}

// newKey makes a key with one version.
func newKey(name string, s keySpec, now time.Time) (*key, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	k := &key{
		name: name, typ: s.typ, derived: s.derived, convergent: s.convergent, exportable: s.exportable,
		plaintextBackup: s.plaintextBackup, minDecrypt: 1, autoRotate: s.autoRotate,
	}
	if err := k.rotate(now); err != nil {
		return nil, err
	}
	return k, nil
}

// rotate adds a version with fresh material.
func (k *key) rotate(now time.Time) error {
	m, err := generateMaterial(k.typ)
	if err != nil {
		return err
	}
	defer m.zero()
	return k.addVersion(now, m)
}

// freshMaterial is the secret material of a version to add, made before
// any lock is taken: an RSA-4096 key takes seconds.
type freshMaterial struct {
	typ       keyType
	key, hmac []byte
}

func generateMaterial(t keyType) (*freshMaterial, error) {
	key, err := t.generate()
	if err != nil {
		return nil, fmt.Errorf("generate %v key: %w", t, err)
	}
	hk := make([]byte, hmacKeyLen)
	if _, err := rand.Read(hk); err != nil {
		return nil, fmt.Errorf("generate hmac key: %w", err)
	}
	return &freshMaterial{typ: t, key: key, hmac: hk}, nil
}

func (m *freshMaterial) zero() {
	clear(m.key)
	clear(m.hmac)
}

// addVersion adds a version made of copies of m.
func (k *key) addVersion(now time.Time, m *freshMaterial) error {
	if m.typ != k.typ {
		return core.StatusError(409, "key %s changed type while it was being rotated; retry the request", k.name)
	}
	v, err := newVersion(k.typ, k.latest()+1, now.UTC(), bytes.Clone(m.key), bytes.Clone(m.hmac))
	if err != nil {
		return err
	}
	k.versions = append(k.versions, v)
	return nil
}

// rotationDue reports whether auto-rotation should add a version now.
func (k *key) rotationDue(now time.Time) bool {
	return k.autoRotate > 0 && !now.Before(k.versions[k.latest()-1].created.Add(k.autoRotate))
}

// zero overwrites the key material of every version.
func (k *key) zero() {
	for _, v := range k.versions {
		v.key.zero()
		v.hmacKey.zero()
	}
	clear(k.raw)
}

// record is the stored form of a key, kept in the mount's storage view
// (which the barrier encrypts). It is the only place key material is
// encoded.
type record struct {
	Format          int             `json:"format"`
	Name            string          `json:"name"`
	Type            string          `json:"type"`
	Derived         bool            `json:"derived"`
	KDF             string          `json:"kdf,omitempty"`
	Convergent      bool            `json:"convergent_encryption"`
	Exportable      bool            `json:"exportable"`
	PlaintextBackup bool            `json:"allow_plaintext_backup"`
	DeletionAllowed bool            `json:"deletion_allowed"`
	MinDecrypt      int             `json:"min_decryption_version"`
	MinEncrypt      int             `json:"min_encryption_version"`
	AutoRotate      int64           `json:"auto_rotate_period_seconds"`
	Versions        []versionRecord `json:"versions"`
}

type versionRecord struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Key     []byte    `json:"key"`
	HMACKey []byte    `json:"hmac_key"`
}

const (
	recordFormat = 1
	kdfHKDF      = "hkdf_sha256"
	hmacKeyLen   = 32
)

// encode returns k's stored form.
func (k *key) encode() ([]byte, error) {
	r := record{
		Format: recordFormat, Name: k.name, Type: k.typ.String(), Derived: k.derived,
		Convergent: k.convergent, Exportable: k.exportable, PlaintextBackup: k.plaintextBackup,
		DeletionAllowed: k.deletionAllowed, MinDecrypt: k.minDecrypt, MinEncrypt: k.minEncrypt,
		AutoRotate: int64(k.autoRotate / time.Second),
		Versions:   make([]versionRecord, len(k.versions)),
	}
	if k.derived {
		r.KDF = kdfHKDF
	}
	for i, v := range k.versions {
		r.Versions[i] = versionRecord{Version: v.n, Created: v.created, Key: v.key.bytes(), HMACKey: v.hmacKey.bytes()}
	}
	return json.Marshal(r)
}

// decodeKey parses a stored record and prepares every version for use.
func decodeKey(raw []byte) (*key, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode key record: %w", err)
	}
	if r.Format != recordFormat {
		return nil, fmt.Errorf("key record format %d is not supported by this build (want %d)", r.Format, recordFormat)
	}
	t, err := parseKeyType(r.Type)
	if err != nil {
		return nil, fmt.Errorf("key record: %w", err)
	}
	if r.Derived && r.KDF != kdfHKDF {
		return nil, fmt.Errorf("key record: unknown kdf %q", r.KDF)
	}
	k := &key{
		name: r.Name, typ: t, derived: r.Derived, convergent: r.Convergent, exportable: r.Exportable,
		plaintextBackup: r.PlaintextBackup, deletionAllowed: r.DeletionAllowed,
		minDecrypt: r.MinDecrypt, minEncrypt: r.MinEncrypt,
		autoRotate: time.Duration(r.AutoRotate) * time.Second,
		versions:   make([]*version, len(r.Versions)),
		raw:        raw,
	}
	if len(r.Versions) == 0 {
		return nil, errors.New("key record has no versions")
	}
	if k.minDecrypt < 1 || k.minDecrypt > k.latest() || k.minEncrypt < 0 || k.minEncrypt > k.latest() {
		return nil, fmt.Errorf("key record: version bounds %d/%d outside 1..%d", k.minDecrypt, k.minEncrypt, k.latest())
	}
	for i, vr := range r.Versions {
		if vr.Version != i+1 {
			return nil, fmt.Errorf("key record: version %d stored at position %d", vr.Version, i+1)
		}
		v, err := newVersion(t, vr.Version, vr.Created, vr.Key, vr.HMACKey)
		if err != nil {
			return nil, fmt.Errorf("key record: version %d: %w", vr.Version, err)
		}
		k.versions[i] = v
	}
	return k, nil
}

// newVersion builds a version from its material, which it takes over.
func newVersion(t keyType, n int, created time.Time, keyBytes, hmacBytes []byte) (*version, error) {
	if len(hmacBytes) != hmacKeyLen {
		return nil, fmt.Errorf("hmac key is %d bytes, want %d", len(hmacBytes), hmacKeyLen)
	}
	v := &version{n: n, created: created, key: newMaterial(keyBytes), hmacKey: newMaterial(hmacBytes)}
	if t.symmetric() {
		if len(keyBytes) != t.symmetricKeyLen() {
			return nil, fmt.Errorf("key is %d bytes, want %d", len(keyBytes), t.symmetricKeyLen())
		}
		aead, err := newAEAD(t, keyBytes)
		if err != nil {
			return nil, err
		}
		v.aead = aead
		return v, nil
	}
	s, err := t.parsePrivate(keyBytes)
	if err != nil {
		return nil, err
	}
	v.signer = s
	return v, nil
}

// newAEAD returns the AEAD of a symmetric type over key.
func newAEAD(t keyType, key []byte) (cipher.AEAD, error) {
	if t == typeChaCha20Poly1305 {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// publicKey returns how a key read shows the public key of an
// asymmetric version: PEM for ECDSA and RSA, base64 for ed25519 (as
// Vault does).
func publicKey(t keyType, pub crypto.PublicKey) (string, error) {
	if t == typeED25519 {
		return base64.StdEncoding.EncodeToString(pub.(ed25519.PublicKey)), nil
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// info is the data of a key read (and of create, config and rotate).
// context, for a derived ed25519 key, selects the public keys shown.
func (k *key) info(context []byte) (map[string]any, error) {
	keys := make(map[string]any, len(k.versions))
	for _, v := range k.versions {
		name := strconv.Itoa(v.n)
		if k.typ.symmetric() {
			keys[name] = v.created.Unix()
			continue
		}
		entry := map[string]any{"creation_time": v.created.Format(time.RFC3339Nano), "name": k.typ.publicName()}
		signer := v.signer
		if k.derived {
			signer = nil
			if len(context) > 0 {
				d, err := deriveED25519(v, context)
				if err != nil {
					return nil, err
				}
				signer = d
			}
		}
		if signer != nil {
			pk, err := publicKey(k.typ, signer.Public())
			if err != nil {
				return nil, fmt.Errorf("encode public key: %w", err)
			}
			entry["public_key"] = pk
		} else {
			entry["public_key"] = ""
		}
		keys[name] = entry
	}
	d := map[string]any{
		"name":                   k.name,
		"type":                   k.typ.String(),
		"keys":                   keys,
		"latest_version":         k.latest(),
		"min_available_version":  0,
		"min_decryption_version": k.minDecrypt,
		"min_encryption_version": k.minEncrypt,
		"deletion_allowed":       k.deletionAllowed,
		"exportable":             k.exportable,
		"allow_plaintext_backup": k.plaintextBackup,
		"derived":                k.derived,
		"imported_key":           false,
		"auto_rotate_period":     int64(k.autoRotate / time.Second),
		"soft_deleted":           false,
		"supports_encryption":    k.typ.canEncrypt(),
		"supports_decryption":    k.typ.canEncrypt(),
		"supports_derivation":    k.typ.canDerive(),
		"supports_signing":       k.typ.canSign(),
	}
	if k.derived {
		d["kdf"] = kdfHKDF
		d["convergent_encryption"] = k.convergent
		if k.convergent {
			d["convergent_encryption_version"] = convergentVersion
		}
	}
	return d, nil
}
