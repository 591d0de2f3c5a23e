package barrier

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	keyringVersion = 1

	// flushEvery is how many encryptions (across terms) pass between
	// best-effort writes of the per-term counts to the keyring.
	flushEvery = 1000

	// warnEncryptions and maxEncryptions bound the records sealed under one
	// term. With random 96-bit nonces, NIST SP 800-38D allows at most 2^32
	// encryptions under one GCM key before the chance of a repeated nonce
	// (which breaks GCM) passes 2^-32. The barrier logs a warning at half
	// of that and again at the limit; operators rotate long before.
	warnEncryptions = 1 << 31
	maxEncryptions  = 1 << 32
)

// term is one keyring entry: a data key and its bookkeeping.
type term struct {
	id          uint32
	key         *secretKey
	aead        cipher.AEAD // nil for a term only being encoded
	installed   time.Time
	encryptions atomic.Uint64 // records sealed under this key, ever (as far as persisted plus this process)
}

// progress is the state of re-encryption, kept in the keyring.
type progress struct {
	// through is the active term of the last completed Reencrypt pass:
	// every record is sealed under it or a later term.
	through uint32
	// cursorTerm and cursorAfter mark how far an unfinished pass towards
	// term cursorTerm got: every record at a physical path up to and
	// including cursorAfter is sealed under cursorTerm or later. Zero when
	// no pass is in progress.
	cursorTerm  uint32
	cursorAfter string
}

// KeyInfo describes a keyring term.
type KeyInfo struct {
	// Term is the term number; terms start at 1 and each Rotate adds one.
	Term uint32
	// InstallTime is when the term was created, in UTC.
	InstallTime time.Time
	// Encryptions counts records sealed under the term's key. The count is
	// persisted in the keyring on every Rotate, every 1000 encryptions and
	// during Reencrypt; encryptions since the last persist are lost if the
	// process stops, so after a crash the count can be low by about 1000
	// (more if a persist failed, which is logged). Rotate well before it
	// reaches 2^32, the GCM limit for random nonces.
	Encryptions uint64
}

func (t *term) info() KeyInfo {
	return KeyInfo{Term: t.id, InstallTime: t.installed, Encryptions: t.encryptions.Load()}
}

// keyringFile is the keyring's JSON form, for decoding. encodeKeyring
// writes the same shape by hand.
type keyringFile struct {
	Version            int         `json:"version"`
	ActiveTerm         uint32      `json:"active_term"`
	ReencryptedThrough uint32      `json:"reencrypted_through"`
	Cursor             *cursorFile `json:"reencrypt_cursor,omitempty"`
	Keys               []termFile  `json:"keys"`
}

type cursorFile struct {
	Term  uint32 `json:"term"`
	After string `json:"after"`
}

type termFile struct {
	Term        uint32    `json:"term"`
	Key         []byte    `json:"key"`
	InstallTime time.Time `json:"install_time"`
	Encryptions uint64    `json:"encryptions"`
}

// encodeKeyring returns the keyring's JSON. It is written by hand, into a
// buffer sized exactly in a first pass over placeholder keys, so the
// base64 of the keys exists in one place only (which the caller zeroes),
// not in encoding/json's pooled buffers or in the leftovers of a growing
// slice.
func encodeKeyring(terms map[uint32]*term, active uint32, p progress) ([]byte, error) {
	ids := slices.Sorted(maps.Keys(terms))
	counts := make([]uint64, len(ids))
	times := make([][]byte, len(ids))
	for i, id := range ids {
		counts[i] = terms[id].encryptions.Load()
		tj, err := terms[id].installed.UTC().MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode keyring: term %d install time: %w", id, err)
		}
		times[i] = tj
	}
	after, err := json.Marshal(p.cursorAfter)
	if err != nil {
		return nil, fmt.Errorf("encode keyring: %w", err)
	}

	write := func(dst []byte, real bool) []byte {
		dst = append(dst, `{"version":`...)
		dst = strconv.AppendInt(dst, keyringVersion, 10)
		dst = append(dst, `,"active_term":`...)
		dst = strconv.AppendUint(dst, uint64(active), 10)
		dst = append(dst, `,"reencrypted_through":`...)
		dst = strconv.AppendUint(dst, uint64(p.through), 10)
		if p.cursorTerm != 0 {
			dst = append(dst, `,"reencrypt_cursor":{"term":`...)
			dst = strconv.AppendUint(dst, uint64(p.cursorTerm), 10)
			dst = append(dst, `,"after":`...)
			dst = append(dst, after...)
			dst = append(dst, '}')
		}
		dst = append(dst, `,"keys":[`...)
		for i, id := range ids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"term":`...)
			dst = strconv.AppendUint(dst, uint64(id), 10)
			dst = append(dst, `,"key":"`...)
			k := terms[id].key.bytes()
			if real {
				dst = base64.StdEncoding.AppendEncode(dst, k)
			} else {
				for range base64.StdEncoding.EncodedLen(len(k)) {
					dst = append(dst, 'A')
				}
			}
			dst = append(dst, `","install_time":`...)
			dst = append(dst, times[i]...)
			dst = append(dst, `,"encryptions":`...)
			dst = strconv.AppendUint(dst, counts[i], 10)
			dst = append(dst, '}')
		}
		return append(dst, "]}"...)
	}
	n := len(write(nil, false))
	out := write(make([]byte, 0, n), true)
	if len(out) != n || cap(out) != n {
		clear(out)
		return nil, errors.New("encode keyring: length changed between passes")
	}
	return out, nil
}

// keyringState is a decoded keyring.
type keyringState struct {
	terms  map[uint32]*term
	active uint32
	prog   progress
}

// decodeKeyring parses and checks the keyring JSON and builds each term's
// cipher. The keys in the result share no memory with plain, which the
// caller zeroes. Unknown fields are ignored: the keyring is authenticated,
// so they can only come from a newer coffer, which bumps "version" when
// an older one must not read its keyring.
func decodeKeyring(plain []byte) (_ *keyringState, err error) {
	var f keyringFile
	defer func() {
		if err != nil {
			for _, k := range f.Keys {
				clear(k.Key)
			}
		}
	}()
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if f.Version != keyringVersion {
		return nil, fmt.Errorf("keyring version %d, this coffer reads version %d; run a coffer at least as new as the one that wrote it", f.Version, keyringVersion)
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("no keys")
	}
	st := &keyringState{terms: make(map[uint32]*term, len(f.Keys)), active: f.ActiveTerm}
	for _, k := range f.Keys {
		switch {
		case k.Term == rootTerm:
			return nil, fmt.Errorf("key with term %d, which is reserved", rootTerm)
		case st.terms[k.Term] != nil:
			return nil, fmt.Errorf("term %d appears twice", k.Term)
		case len(k.Key) != keyLen:
			return nil, fmt.Errorf("term %d key is %d bytes, want %d", k.Term, len(k.Key), keyLen)
		}
		if _, err := k.InstallTime.UTC().MarshalJSON(); err != nil {
			return nil, fmt.Errorf("term %d install time: %w", k.Term, err)
		}
		aead, err := newAEAD(k.Key)
		if err != nil {
			return nil, fmt.Errorf("term %d: %w", k.Term, err)
		}
		t := &term{id: k.Term, key: newSecretKey(k.Key), aead: aead, installed: k.InstallTime.UTC()}
		t.encryptions.Store(k.Encryptions)
		st.terms[k.Term] = t
	}
	if st.terms[f.ActiveTerm] == nil {
		return nil, fmt.Errorf("active term %d has no key", f.ActiveTerm)
	}
	if f.ReencryptedThrough > f.ActiveTerm {
		return nil, fmt.Errorf("reencrypted through term %d, beyond the active term %d", f.ReencryptedThrough, f.ActiveTerm)
	}
	st.prog.through = f.ReencryptedThrough
	if c := f.Cursor; c != nil {
		if c.Term == rootTerm || c.Term > f.ActiveTerm {
			return nil, fmt.Errorf("re-encryption cursor for term %d, outside 1..%d", c.Term, f.ActiveTerm)
		}
		st.prog.cursorTerm, st.prog.cursorAfter = c.Term, c.After
	}
	return st, nil
}

// writeKeyring seals the keyring made of terms, active and p under the
// root key and stores it. The caller holds b.mu (shared is enough) and
// b.keyringMu.
func (b *Barrier) writeKeyring(ctx context.Context, terms map[uint32]*term, active uint32, p progress) error {
	plain, err := encodeKeyring(terms, active, p)
	if err != nil {
		return err
	}
	defer clear(plain)
	rec, err := sealRecord(rand.Reader, b.k.rootAEAD, rootTerm, keyringPath, plain)
	if err != nil {
		return err
	}
	if err := b.phys.Put(ctx, keyringPath, rec); err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}
	return nil
}

// flushCounts persists the current keyring, and with it the encryption
// counts. The caller holds b.mu shared.
func (b *Barrier) flushCounts(ctx context.Context) error {
	b.keyringMu.Lock()
	defer b.keyringMu.Unlock()
	return b.writeKeyring(ctx, b.k.terms, b.k.active.id, b.prog)
}

// encrypt seals plaintext for logical key under the active term and
// counts the encryption. The caller holds b.mu shared and has checked the
// barrier is unsealed.
func (b *Barrier) encrypt(ctx context.Context, key string, plaintext []byte) ([]byte, error) {
	t := b.k.active
	rec, err := sealRecord(rand.Reader, t.aead, t.id, key, plaintext)
	if err != nil {
		return nil, err
	}
	switch n := t.encryptions.Add(1); n {
	case warnEncryptions, maxEncryptions:
		b.log.Warn("barrier key term nears its encryption limit; rotate the keyring", "term", t.id, "encryptions", n, "limit", uint64(maxEncryptions))
	}
	if b.encryptions.Add(1)%flushEvery == 0 {
		if err := b.flushCounts(ctx); err != nil {
			b.log.Warn("barrier could not persist encryption counts; they will be retried", "err", err)
		}
	}
	return rec, nil
}

// Rotate adds a keyring term with a fresh data key and makes it active. The
// new keyring is persisted before any record is sealed under the new key;
// if that write fails, nothing changes. Records sealed under older terms
// stay readable (their keys stay in the keyring) until Reencrypt rewrites
// them. Rotate waits for writes in flight, so every write that returns
// after it used the new term.
func (b *Barrier) Rotate(ctx context.Context) (KeyInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.k == nil {
		return KeyInfo{}, ErrSealed
	}
	if b.k.active.id == math.MaxUint32 {
		return KeyInfo{}, errors.New("barrier: rotate: the keyring has used every term number")
	}
	raw, err := GenerateKey()
	if err != nil {
		return KeyInfo{}, fmt.Errorf("barrier: rotate: %w", err)
	}
	t := &term{id: b.k.active.id + 1, key: newSecretKey(raw), installed: b.now().UTC()}
	if t.aead, err = newAEAD(t.key.bytes()); err != nil {
		t.key.zero()
		return KeyInfo{}, fmt.Errorf("barrier: rotate: %w", err)
	}
	terms := maps.Clone(b.k.terms)
	terms[t.id] = t

	b.keyringMu.Lock()
	err = b.writeKeyring(ctx, terms, t.id, b.prog)
	b.keyringMu.Unlock()
	if err != nil {
		t.key.zero()
		return KeyInfo{}, fmt.Errorf("barrier: rotate: %w", err)
	}
	b.k.terms, b.k.active = terms, t
	b.log.Info("barrier key rotated", "term", t.id)
	return t.info(), nil
}

// KeyStatus describes the active term.
func (b *Barrier) KeyStatus() (KeyInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return KeyInfo{}, ErrSealed
	}
	return b.k.active.info(), nil
}

// Terms describes every term in the keyring, oldest first.
func (b *Barrier) Terms() ([]KeyInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return nil, ErrSealed
	}
	out := make([]KeyInfo, 0, len(b.k.terms))
	for _, id := range slices.Sorted(maps.Keys(b.k.terms)) {
		out = append(out, b.k.terms[id].info())
	}
	return out, nil
}
