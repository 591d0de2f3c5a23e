package token

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

var (
	// ErrNotFound is returned for a token that is unknown, expired,
	// revoked, being revoked, out of uses, or whose parent (at any depth)
	// is any of these. The cases are deliberately indistinguishable.
	ErrNotFound = errors.New("token: not found")
	// ErrNotRenewable is returned by Renew for a token created with
	// renewable=false or one that never expires (a root token).
	ErrNotRenewable = errors.New("token: token is not renewable")
	// ErrExists is returned by Create when an explicit id is already in
	// use; choose another id.
	ErrExists = errors.New("token: a token with this id already exists")
	// ErrInvalidRequest is returned (wrapped, with every problem listed)
	// by Create for a request that fails Validate.
	ErrInvalidRequest = errors.New("token: invalid request")
)

// Defaults for Options, as in Vault.
const (
	DefaultTTL          = 768 * time.Hour
	DefaultMaxTTL       = 768 * time.Hour
	DefaultTidyInterval = time.Minute
)

// maxDepth bounds ancestor walks, so corrupt parent links cannot loop.
const maxDepth = 256

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// Logger receives tidy and revocation messages; a discard logger when
	// nil. Messages carry token hashes and accessors, never tokens.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// DefaultTTL is the TTL of a token created with TTL 0 (768h).
	DefaultTTL time.Duration
	// MaxTTL is the system maximum: no non-periodic token lives longer
	// than MaxTTL from its creation, and no period exceeds it (768h).
	MaxTTL time.Duration
	// TidyInterval is how often Run removes expired tokens (1m).
	TidyInterval time.Duration
}

// Store is the token store. It is safe for concurrent use and keeps no
// state of its own besides its configuration: several Stores on the same
// backend see the same tokens.
type Store struct {
	b            storage.Backend
	log          *slog.Logger
	now          func() time.Time
	defaultTTL   time.Duration
	maxTTL       time.Duration
	tidyInterval time.Duration
	hash         hasher

	// decoded remembers the last decoded entry per hash with the bytes it
	// came from, so a lookup whose stored bytes are unchanged skips JSON
	// decoding. Entries are cloned on the way out.
	decoded sync.Map // hash -> decodedEntry
}

type decodedEntry struct {
	raw []byte
	e   *Entry
}

func (e *Entry) clone() *Entry {
	c := *e
	c.Policies = append([]string(nil), e.Policies...)
	c.BoundCIDRs = append([]string(nil), e.BoundCIDRs...)
	if e.Meta != nil {
		c.Meta = make(map[string]string, len(e.Meta))
		for k, v := range e.Meta {
			c.Meta[k] = v
		}
	}
	return &c
}

// New returns a Store on b, creating the HMAC salt at "salt" on first use.
func New(ctx context.Context, b storage.Backend, opts Options) (*Store, error) {
	var problems []string
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"default TTL", &opts.DefaultTTL, DefaultTTL},
		{"max TTL", &opts.MaxTTL, DefaultMaxTTL},
		{"tidy interval", &opts.TidyInterval, DefaultTidyInterval},
	} {
		switch {
		case *d.v < 0:
			problems = append(problems, fmt.Sprintf("%s %v is negative", d.name, *d.v))
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if opts.DefaultTTL > opts.MaxTTL {
		problems = append(problems, fmt.Sprintf("default TTL %v exceeds max TTL %v", opts.DefaultTTL, opts.MaxTTL))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("token: options: %s", strings.Join(problems, "; "))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	salt, err := loadSalt(ctx, b)
	if err != nil {
		return nil, err
	}
	return &Store{
		b:            b,
		log:          opts.Logger,
		now:          opts.Now,
		defaultTTL:   opts.DefaultTTL,
		maxTTL:       opts.MaxTTL,
		tidyInterval: opts.TidyInterval,
		hash:         newHasher(salt),
	}, nil
}

const saltKey = "salt"

// loadSalt reads the salt, creating it if absent. Two Stores racing on a
// fresh backend agree on one salt through CheckAbsent.
func loadSalt(ctx context.Context, b storage.Backend) ([]byte, error) {
	for range 3 {
		salt, err := b.Get(ctx, saltKey)
		if err == nil {
			if len(salt) != 32 {
				return nil, fmt.Errorf("token: stored salt is %d bytes, want 32", len(salt))
			}
			return salt, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("token: read salt: %w", err)
		}
		salt = make([]byte, 32)
		rand.Read(salt)
		err = b.Txn(ctx, []storage.Op{storage.CheckAbsent(saltKey), storage.Put(saltKey, salt)})
		if err == nil {
			return salt, nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return nil, fmt.Errorf("token: create salt: %w", err)
		}
	}
	return nil, errors.New("token: create salt: kept conflicting")
}

// clock returns the current time in UTC without a monotonic reading, so
// that it survives a JSON round trip unchanged.
func (s *Store) clock() time.Time { return s.now().UTC() }

// Storage keys.
func idKey(h string) string           { return "id/" + h }
func accessorKey(ah string) string    { return "accessor/" + ah }
func parentPrefix(p string) string    { return "parent/" + p + "/" }
func parentKey(p, h string) string    { return "parent/" + p + "/" + h }
func revokeKey(h string) string       { return "revoke/" + h }
func expiryBucket(start int64) string { return fmt.Sprintf("expiry/%020d/", start) }

const (
	expiryPrefix = "expiry/"
	revokePrefix = "revoke/"
	idPrefix     = "id/"
	bucketSecs   = 3600
)

// expiryKey is the expiry index row of a token expiring at t, or "" for a
// token that never expires. The row's second is t rounded up, so a row
// whose second is <= now.Unix() always belongs to an expired token.
func expiryKey(t time.Time, h string) string {
	if t.IsZero() {
		return ""
	}
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	sec = max(sec, 0)
	return fmt.Sprintf("%s%020d.%s", expiryBucket(sec-sec%bucketSecs), sec, h)
}

// get reads the entry stored under hash h, with its raw bytes for a
// compare-and-set. A missing entry is ErrNotFound.
func (s *Store) get(ctx context.Context, h string) ([]byte, *Entry, error) {
	raw, err := s.b.Get(ctx, idKey(h))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("token: read entry: %w", err)
	}
	if d, ok := s.decoded.Load(h); ok && bytes.Equal(d.(decodedEntry).raw, raw) {
		return raw, d.(decodedEntry).e.clone(), nil
	}
	e := new(Entry)
	if err := json.Unmarshal(raw, e); err != nil {
		return nil, nil, fmt.Errorf("token: decode entry %s: %w", short(h), err)
	}
	if subtle.ConstantTimeCompare([]byte(e.ID), []byte(h)) == 1 {
		s.decoded.Store(h, decodedEntry{raw: append([]byte(nil), raw...), e: e.clone()})
	}
	// The key is derived from the hash, so a mismatch means corruption;
	// compare in constant time all the same.
	if subtle.ConstantTimeCompare([]byte(e.ID), []byte(h)) != 1 {
		return nil, nil, fmt.Errorf("token: entry %s holds id %s", short(h), short(e.ID))
	}
	return raw, e, nil
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// ancestors checks that every ancestor of e is live at now. It returns
// CheckEqual ops pinning each ancestor as read, which Create adds to its
// Txn so a child cannot appear under a tree whose revocation has begun.
// A parent being revoked as an orphan-maker ends the walk: its children
// are about to become orphans and stay valid.
func (s *Store) ancestors(ctx context.Context, e *Entry, now time.Time) ([]storage.Op, error) {
	var pins []storage.Op
	for p, depth := e.Parent, 0; p != ""; depth++ {
		if depth == maxDepth {
			return nil, fmt.Errorf("token: parent chain of %s is deeper than %d", short(e.ID), maxDepth)
		}
		raw, pe, err := s.get(ctx, p)
		if err != nil {
			return nil, err
		}
		pins = append(pins, storage.CheckEqual(idKey(p), raw))
		if pe.Revocation == revokeOrphan && !pe.expired(now) {
			break
		}
		if !pe.live(now) {
			return nil, ErrNotFound
		}
		p = pe.Parent
	}
	return pins, nil
}

// lookupHash returns the live entry stored under h.
func (s *Store) lookupHash(ctx context.Context, h string) (*Entry, error) {
	_, e, err := s.get(ctx, h)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	if !e.live(now) {
		return nil, ErrNotFound
	}
	if _, err := s.ancestors(ctx, e, now); err != nil {
		return nil, err
	}
	return e, nil
}

// Lookup returns the entry of a live token. Any string is accepted; one
// that names no live token gives ErrNotFound.
func (s *Store) Lookup(ctx context.Context, token string) (*Entry, error) {
	if token == "" || len(token) > MaxTokenLen {
		return nil, ErrNotFound
	}
	return s.lookupHash(ctx, s.hash.token(token))
}

// LookupAccessor returns the entry of the live token with this accessor.
func (s *Store) LookupAccessor(ctx context.Context, accessor string) (*Entry, error) {
	if accessor == "" || len(accessor) > maxAccessorLen {
		return nil, ErrNotFound
	}
	h, err := s.b.Get(ctx, accessorKey(s.hash.accessor(accessor)))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("token: read accessor: %w", err)
	}
	if !isHash(string(h)) {
		return nil, fmt.Errorf("token: accessor index holds a malformed hash")
	}
	e, err := s.lookupHash(ctx, string(h))
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(e.Accessor), []byte(accessor)) != 1 {
		return nil, ErrNotFound
	}
	return e, nil
}

// LookupID returns the entry of the live token whose hash (Entry.ID) is h.
func (s *Store) LookupID(ctx context.Context, h string) (*Entry, error) {
	if !isHash(h) {
		return nil, ErrNotFound
	}
	return s.lookupHash(ctx, h)
}

// update applies fn to the current entry at h and writes the result back
// with a compare-and-set, together with the ops fn returns, retrying on
// conflict. An error from fn aborts without writing.
func (s *Store) update(ctx context.Context, h string, fn func(e *Entry) ([]storage.Op, error)) (*Entry, error) {
	var e *Entry
	err := retry(ctx, "update "+short(h), func() error {
		raw, cur, err := s.get(ctx, h)
		if err != nil {
			return err
		}
		extra, err := fn(cur)
		if err != nil {
			return err
		}
		b, err := json.Marshal(cur)
		if err != nil {
			return fmt.Errorf("token: encode entry: %w", err)
		}
		ops := append([]storage.Op{storage.CheckEqual(idKey(h), raw), storage.Put(idKey(h), b)}, extra...)
		if err := s.b.Txn(ctx, ops); err != nil {
			return fmt.Errorf("token: write entry: %w", err)
		}
		e = cur
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// maxAttempts bounds compare-and-set retries. Every conflict means that
// another writer succeeded, so a healthy backend never comes close; the
// bound turns a broken one into an error instead of a spinning loop.
const maxAttempts = 1000

// retry runs attempt until it returns anything but a storage conflict.
func retry(ctx context.Context, what string, attempt func() error) error {
	for range maxAttempts {
		err := attempt()
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return fmt.Errorf("token: %s: still conflicting after %d attempts; check that the storage backend's compare-and-set works", what, maxAttempts)
}

// Use consumes one use of a token created with NumUses > 0 and sets
// e.NumUses to the uses left; for a token without a use limit it does
// nothing. Concurrent calls never spend the same use twice. When the last
// use is consumed, exhausted is true: from then on the token fails Lookup
// and further Use, and the caller must Revoke it once the current request
// is done (if it cannot, Run finishes the revocation later). A token that
// has no use left gives ErrNotFound.
func (s *Store) Use(ctx context.Context, e *Entry) (exhausted bool, err error) {
	if e == nil || !isHash(e.ID) {
		return false, ErrNotFound
	}
	if e.NumUses == 0 {
		return false, nil
	}
	now := s.clock()
	cur, err := s.update(ctx, e.ID, func(cur *Entry) ([]storage.Op, error) {
		if !cur.live(now) || cur.NumUses <= 0 {
			return nil, ErrNotFound
		}
		cur.NumUses--
		exhausted = cur.NumUses == 0
		if !exhausted {
			return nil, nil
		}
		cur.Revocation = revokeTree
		return []storage.Op{storage.Put(revokeKey(cur.ID), markerValue(revokeTree, now))}, nil
	})
	if err != nil {
		return false, err
	}
	e.NumUses = cur.NumUses
	return exhausted, nil
}

// Count returns the number of stored tokens, including any that have
// expired but not yet been tidied. It lists every token hash, so it costs
// O(tokens); call it at metrics-scrape rate, not per request.
func (s *Store) Count(ctx context.Context) (int, error) {
	ids, err := s.b.List(ctx, idPrefix)
	if err != nil {
		return 0, fmt.Errorf("token: count: %w", err)
	}
	return len(ids), nil
}
