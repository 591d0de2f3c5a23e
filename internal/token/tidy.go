package token

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Run removes expired tokens every Options.TidyInterval and finishes
// interrupted revocations: all of them when it starts, and afterwards
// those whose marker is older than one interval (a caller that never
// revoked its exhausted token). Failures are logged and retried at the
// next tick; Run returns nil when ctx ends.
func (s *Store) Run(ctx context.Context) error {
	s.tick(ctx, time.Time{})
	t := time.NewTicker(s.tidyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.tick(ctx, s.clock().Add(-s.tidyInterval))
		}
	}
}

func (s *Store) tick(ctx context.Context, markersBefore time.Time) {
	if _, err := s.resume(ctx, markersBefore); err != nil && ctx.Err() == nil {
		s.log.Error("token revocation resume failed", "error", err)
	}
	n, err := s.Tidy(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Error("token tidy failed", "error", err)
	}
	if n > 0 {
		s.log.Info("expired tokens revoked", "count", n)
	}
}

// Tidy revokes every token that has expired, with its descendants, and
// drops stale expiry rows. It reads only the expiry index: the hour
// buckets (one List), then the rows of the buckets that are due, in time
// order, stopping at the first row in the future. It reports how many
// expired tokens it revoked (descendants not counted).
func (s *Store) Tidy(ctx context.Context) (int, error) {
	now := s.clock()
	nowSec := now.Unix()
	buckets, err := s.b.List(ctx, expiryPrefix)
	if err != nil {
		return 0, fmt.Errorf("token: tidy: list expiry buckets: %w", err)
	}
	var errs []error
	n := 0
	for _, b := range buckets {
		start, err := strconv.ParseInt(strings.TrimSuffix(b, "/"), 10, 64)
		if err != nil || !strings.HasSuffix(b, "/") {
			continue // not ours
		}
		if start > nowSec {
			break // buckets are zero-padded, so sorted by time
		}
		prefix := expiryPrefix + b
		rows, err := s.b.List(ctx, prefix)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", prefix, err))
			continue
		}
		for _, r := range rows {
			sec, h, ok := parseExpiryRow(r)
			if !ok {
				continue
			}
			if sec > nowSec {
				break
			}
			ran, err := s.tidyRow(ctx, prefix+r, h, now)
			if err != nil {
				errs = append(errs, err)
				if ctx.Err() != nil {
					return n, errors.Join(errs...)
				}
			}
			if ran {
				n++
			}
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("token: tidy: %w", errors.Join(errs...))
	}
	return n, nil
}

// tidyRow handles one due expiry row: it revokes the token if it has
// expired (checked atomically with marking it, so a concurrent renewal
// wins), and deletes the row if it no longer belongs to a stored token.
func (s *Store) tidyRow(ctx context.Context, key, h string, now time.Time) (bool, error) {
	ran, err := s.revoke(ctx, h, revokeTree, func(e *Entry) bool {
		return e.expired(now) && expiryKey(e.ExpireAt, h) == key
	})
	if err != nil || ran {
		return ran, err
	}
	_, e, err := s.get(ctx, h)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return false, err
	case expiryKey(e.ExpireAt, h) == key:
		return false, nil // still the token's row (revoked meanwhile by someone else, or being revoked)
	}
	if err := s.b.Delete(ctx, key); err != nil {
		return false, fmt.Errorf("delete stale expiry row: %w", err)
	}
	return false, nil
}

// parseExpiryRow splits "<20-digit unix>.<hash>".
func parseExpiryRow(r string) (sec int64, h string, ok bool) {
	ts, h, found := strings.Cut(r, ".")
	if !found || len(ts) != 20 || !isHash(h) {
		return 0, "", false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return sec, h, true
}
