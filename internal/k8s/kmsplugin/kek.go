package kmsplugin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/kms/pkg/service"
)

// Local key encryption keys: the key hierarchy of KEP-3299. The plugin
// encrypts the apiserver's seeds under a local KEK, an AES-256 key of its
// own that coffer's transit key wraps; the wrapped KEK travels with every
// ciphertext as an annotation. Encrypt then costs no call to coffer, and
// Decrypt calls coffer once per KEK, not once per seed: one call unwraps
// every seed written under that KEK, also after a restart of the plugin.
//
// A KEK encrypts until the transit key has a newer version (so the key id
// follows a rotation), for KEKLifetime, or for kekMaxUses seeds, whichever
// comes first; then the next Encrypt makes a new one (one transit encrypt).
// Unwrapped KEKs are kept in the data-key cache (same size, TTL and
// zeroing) beside the seeds of FormatV1 ciphertexts, which still decrypt.
const (
	// FormatLocalKEK marks a ciphertext sealed under a local KEK: the
	// ciphertext is a 12-byte nonce and the AES-256-GCM sealed seed, and
	// AnnotationKEK holds the transit ciphertext of the KEK.
	FormatLocalKEK = "local-kek-v1"
	// AnnotationKEK holds the KEK wrapped by the transit key
	// ("vault:v<n>:..."); n is the version the key id names.
	AnnotationKEK = "kek.kms.cofferhq.github.io"
	// DefaultKEKLifetime is how long one KEK encrypts new seeds.
	DefaultKEKLifetime = 24 * time.Hour
	// kekMaxUses bounds the seeds one KEK encrypts: random 96-bit GCM
	// nonces stay far from a collision (NIST SP 800-38D allows 2^32).
	kekMaxUses = 1 << 20
	kekSize    = 32
	nonceSize  = 12
	tagSize    = 16
)

// localKEK is the KEK that encrypts new seeds. Its raw bytes are zeroed as
// soon as they are cached and the AEAD is built; the AEAD's key schedule
// lives until the collector takes it, as every Go AES key's does.
type localKEK struct {
	wrapped []byte // the transit ciphertext of the key
	version int    // the transit key version that wrapped it
	keyID   string // the key id naming version
	aead    cipher.AEAD
	created time.Time
	uses    atomic.Int64
}

// kekFlight is one KEK being made; the callers that need it wait for done.
type kekFlight struct {
	done chan struct{}
	kek  *localKEK
	err  error
}

// kekState holds the current KEK and the one being made.
type kekState struct {
	cur    atomic.Pointer[localKEK]
	mu     sync.Mutex // guards flight
	flight *kekFlight
}

// usable reports whether k may encrypt one more seed.
func (p *Plugin) usable(k *localKEK) bool {
	return k != nil && int64(k.version) >= p.latest.Load() && k.uses.Load() < kekMaxUses &&
		time.Since(k.created) < p.cfg.KEKLifetime
}

// currentKEK returns a KEK that may encrypt, making a new one (wrapped by
// the latest transit key version) when there is none or it is used up.
// Concurrent callers share one making; each waits at most until its ctx
// ends.
func (p *Plugin) currentKEK(ctx context.Context) (*localKEK, error) {
	if k := p.kek.cur.Load(); p.usable(k) {
		return k, nil
	}
	p.kek.mu.Lock()
	if k := p.kek.cur.Load(); p.usable(k) {
		p.kek.mu.Unlock()
		return k, nil
	}
	f := p.kek.flight
	if f == nil {
		// The KEK is the plugin's, not the caller's: it is made to the
		// end of its own Timeout even when the caller that asked first
		// gives up, so that the others waiting for it do not fail with
		// that caller's cancellation.
		f = &kekFlight{done: make(chan struct{})}
		p.kek.flight = f
		go func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
			f.kek, f.err = p.newKEK(cctx)
			cancel()
			p.kek.mu.Lock()
			if f.err == nil {
				p.kek.cur.Store(f.kek)
			}
			p.kek.flight = nil
			p.kek.mu.Unlock()
			close(f.done)
		}()
	}
	p.kek.mu.Unlock()
	select {
	case <-f.done:
		return f.kek, f.err
	case <-ctx.Done():
		return nil, gaveUp(ctx, "encrypt", p.key.path("encrypt"), "a new key encryption key")
	}
}

// newKEK makes a KEK: 32 random bytes, wrapped by coffer's transit key.
func (p *Plugin) newKEK(ctx context.Context) (*localKEK, error) {
	raw := make([]byte, kekSize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("random key: %w", err)
	}
	c, err := p.client()
	if err != nil {
		return nil, err
	}
	ct, v, err := transitEncrypt(ctx, c, p.key, raw)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	p.sawVersion(v)
	k := &localKEK{wrapped: []byte(ct), version: v, keyID: p.key.keyID(v), aead: aead, created: time.Now()}
	p.cache.put(k.wrapped, raw)
	p.metrics.kekCreated()
	p.logger.Info("new local key encryption key", "key_id", k.keyID)
	return k, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("local key encryption key: %w", err)
	}
	return cipher.NewGCM(b)
}

// kekAAD binds a sealed seed to the format and to the KEK it is sealed
// under.
func kekAAD(dst, wrapped []byte) []byte {
	dst = append(dst, FormatLocalKEK...)
	dst = append(dst, 0)
	return append(dst, wrapped...)
}

// encryptLocal seals plaintext under the current KEK.
func (p *Plugin) encryptLocal(ctx context.Context, plaintext []byte) (*service.EncryptResponse, error) {
	k, err := p.currentKEK(ctx)
	if err != nil {
		return nil, err
	}
	k.uses.Add(1)
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("random nonce: %w", err)
	}
	var aad [128]byte
	out = k.aead.Seal(out, out[:nonceSize], plaintext, kekAAD(aad[:0], k.wrapped))
	return &service.EncryptResponse{
		Ciphertext: out,
		KeyID:      k.keyID,
		Annotations: map[string][]byte{
			AnnotationFormat: []byte(FormatLocalKEK),
			AnnotationKEK:    k.wrapped,
		},
	}, nil
}

// checkLocal refuses a FormatLocalKEK request this plugin cannot have
// written, before any call to coffer.
func (p *Plugin) checkLocal(req *service.DecryptRequest) error {
	wrapped, ok := req.Annotations[AnnotationKEK]
	if !ok {
		return fmt.Errorf("%w: format %s without the %s annotation", ErrBadCiphertext, FormatLocalKEK, AnnotationKEK)
	}
	v, err := parseCiphertext(wrapped)
	if err != nil {
		return fmt.Errorf("annotation %s: %w", AnnotationKEK, err)
	}
	kv, err := p.key.parseKeyID(req.KeyID)
	if err != nil {
		return err
	}
	if kv != v {
		return fmt.Errorf("%w %q: the key encryption key is from version %d", ErrUnknownKeyID, req.KeyID, v)
	}
	if n := len(req.Ciphertext); n <= nonceSize+tagSize || n > nonceSize+tagSize+maxPlaintext {
		return fmt.Errorf("%w: %d bytes, want %d to %d", ErrBadCiphertext, n, nonceSize+tagSize+1, nonceSize+tagSize+maxPlaintext)
	}
	return nil
}

// decryptLocal opens a FormatLocalKEK ciphertext: with the current KEK or
// a cached one without coffer, else after coffer unwraps the KEK (which is
// then cached for the other seeds under it).
func (p *Plugin) decryptLocal(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	wrapped := req.Annotations[AnnotationKEK]
	var aead cipher.AEAD
	if k := p.kek.cur.Load(); k != nil && string(k.wrapped) == string(wrapped) {
		aead = k.aead
		p.metrics.cache(true)
	} else {
		raw, err := p.openTransit(ctx, uid, wrapped)
		if err != nil {
			return nil, err
		}
		if len(raw) != kekSize {
			clear(raw)
			return nil, status.Errorf(codes.InvalidArgument,
				"kms-plugin: annotation %s does not hold a key encryption key", AnnotationKEK)
		}
		aead, err = newAEAD(raw)
		clear(raw)
		if err != nil {
			return nil, p.failed(uid, "decrypt", err)
		}
	}
	var aad [128]byte
	ct := req.Ciphertext
	pt, err := aead.Open(nil, ct[:nonceSize], ct[nonceSize:], kekAAD(aad[:0], wrapped))
	if err != nil {
		p.logger.Warn("decrypt refused: the ciphertext does not open under its key encryption key", "uid", uid, "key_id", req.KeyID)
		return nil, status.Errorf(codes.InvalidArgument,
			"kms-plugin: the ciphertext does not open under the key encryption key of its %s annotation (corrupt, or written for another)", AnnotationKEK)
	}
	return pt, nil
}
