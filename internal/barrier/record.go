package barrier

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
)

// The record layout. Every value the barrier stores, logical entries and
// the keyring alike, is one record:
//
//	term (4 bytes, big-endian) | version (1 byte) | nonce (12) | ciphertext | tag (16)
//
// sealed with AES-256-GCM under the key of that term, with the path as
// additional data.
const (
	recordVersion = 1
	termLen       = 4
	headerLen     = termLen + 1
	nonceLen      = 12
	tagLen        = 16
	// minRecordLen is the length of a record with an empty plaintext.
	minRecordLen = headerLen + nonceLen + tagLen
	// keyLen is the length of the root key and of every data key.
	keyLen = 32
	// rootTerm is the term written in the keyring's own record: term 0 is
	// never a keyring term and means "sealed under the root key".
	rootTerm = 0
)

// newAEAD returns AES-256-GCM keyed with key, which must be keyLen bytes.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keyLen {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), keyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealRecord encrypts plaintext under aead as a record of term, bound to
// path. rnd supplies the nonce: crypto/rand.Reader outside tests.
func sealRecord(rnd io.Reader, aead cipher.AEAD, term uint32, path string, plaintext []byte) ([]byte, error) {
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(plaintext)+aead.Overhead())
	binary.BigEndian.PutUint32(out, term)
	out[termLen] = recordVersion
	nonce := out[headerLen : headerLen+nonceLen]
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("barrier: read nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, []byte(path)), nil
}

// recordTerm checks a record's length and version and returns the term
// whose key sealed it. Errors wrap ErrDecrypt.
func recordTerm(path string, rec []byte) (uint32, error) {
	if len(rec) < minRecordLen {
		return 0, fmt.Errorf("%w: %q: record is %d bytes, shorter than the %d-byte minimum; it was truncated or is not a barrier record", ErrDecrypt, path, len(rec), minRecordLen)
	}
	if v := rec[termLen]; v != recordVersion {
		return 0, fmt.Errorf("%w: %q: record version %d, this coffer reads version %d; the record is corrupt or from a newer coffer", ErrDecrypt, path, v, recordVersion)
	}
	return binary.BigEndian.Uint32(rec), nil
}

// openRecord authenticates and decrypts rec, which must be bound to path.
// The caller has already picked aead by the record's term. Errors wrap
// ErrDecrypt.
func openRecord(aead cipher.AEAD, path string, rec []byte) ([]byte, error) {
	if _, err := recordTerm(path, rec); err != nil {
		return nil, err
	}
	nonce := rec[headerLen : headerLen+nonceLen]
	plain, err := aead.Open(nil, nonce, rec[headerLen+nonceLen:], []byte(path))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: the record was altered, moved from another path, or sealed under another key", ErrDecrypt, path)
	}
	return plain, nil
}
