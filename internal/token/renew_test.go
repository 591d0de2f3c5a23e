package token

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestExpiry(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	tok, e := env.create(t, CreateRequest{TTL: time.Hour})
	childTok, _ := env.create(t, CreateRequest{TTL: 10 * time.Hour, Parent: e})
	rootTok, _ := env.create(t, CreateRequest{Policies: []string{"root"}})

	env.clock.Add(time.Hour - time.Nanosecond)
	assertLive(t, env.s, tok, childTok, rootTok)
	got, err := env.s.Lookup(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := got.TTLRemaining(env.clock.Now()); ttl != time.Nanosecond {
		t.Errorf("TTL remaining = %v, want 1ns", ttl)
	}

	env.clock.Add(time.Nanosecond) // exactly at expire_time
	assertGone(t, env.s, tok)
	// The child outlives its own TTL check but not its parent's.
	assertGone(t, env.s, childTok)
	assertLive(t, env.s, rootTok)
	if _, err := env.s.LookupAccessor(ctx, e.Accessor); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupAccessor of expired token: %v", err)
	}
	if _, err := env.s.LookupID(ctx, e.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupID of expired token: %v", err)
	}
	if _, err := env.s.Renew(ctx, e, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("Renew of expired token: %v", err)
	}
	// The index has one-second resolution, rounded up: tidy sees the
	// token within a second of its expiry (Lookup refuses it at once).
	if n, err := env.s.Tidy(ctx); err != nil || n != 0 {
		t.Errorf("Tidy within the expiry second = %d, %v; want 0", n, err)
	}
	env.clock.Add(time.Second)
	if n, err := env.s.Tidy(ctx); err != nil || n != 1 {
		t.Errorf("Tidy = %d, %v; want 1", n, err)
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	type step struct {
		after     time.Duration // clock advance before renewing
		increment time.Duration
		wantTTL   time.Duration // remaining after renewal
		wantErr   error
	}
	tests := []struct {
		name  string
		opts  Options
		req   CreateRequest
		steps []step
	}{
		{"increment", Options{}, CreateRequest{TTL: time.Hour},
			[]step{{30 * time.Minute, 2 * time.Hour, 2 * time.Hour, nil}}},
		{"zero increment uses creation TTL", Options{}, CreateRequest{TTL: time.Hour},
			[]step{{30 * time.Minute, 0, time.Hour, nil}, {50 * time.Minute, 0, time.Hour, nil}}},
		{"shortens", Options{}, CreateRequest{TTL: 2 * time.Hour},
			[]step{{0, 10 * time.Minute, 10 * time.Minute, nil}}},
		{"capped by explicit max", Options{}, CreateRequest{TTL: time.Hour, ExplicitMaxTTL: 90 * time.Minute},
			[]step{{30 * time.Minute, 2 * time.Hour, time.Hour, nil}, {59 * time.Minute, 2 * time.Hour, time.Minute, nil}}},
		{"capped by system max from creation", Options{MaxTTL: 4 * time.Hour, DefaultTTL: time.Hour}, CreateRequest{TTL: time.Hour},
			[]step{{50 * time.Minute, 2 * time.Hour, 2 * time.Hour, nil}, {110 * time.Minute, 2 * time.Hour, 80 * time.Minute, nil}}},
		{"periodic ignores increment", Options{}, CreateRequest{Period: time.Hour, TTL: 5 * time.Minute},
			[]step{{50 * time.Minute, 5 * time.Hour, time.Hour, nil}, {10 * time.Minute, 0, time.Hour, nil}}},
		{"periodic capped by explicit max", Options{}, CreateRequest{Period: time.Hour, ExplicitMaxTTL: 2 * time.Hour},
			[]step{{50 * time.Minute, 0, time.Hour, nil}, {40 * time.Minute, 0, 30 * time.Minute, nil}}},
		{"not renewable", Options{}, CreateRequest{TTL: time.Hour, Renewable: ptr(false)},
			[]step{{time.Minute, time.Hour, 0, ErrNotRenewable}}},
		{"root never expires", Options{}, CreateRequest{Policies: []string{"root"}},
			[]step{{time.Minute, time.Hour, 0, ErrNotRenewable}}},
		{"expired", Options{}, CreateRequest{TTL: time.Hour},
			[]step{{time.Hour, time.Hour, 0, ErrNotFound}}},
		{"negative increment", Options{}, CreateRequest{TTL: time.Hour},
			[]step{{0, -time.Second, 0, ErrInvalidRequest}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, tt.opts)
			tok, e := env.create(t, tt.req)
			for i, st := range tt.steps {
				env.clock.Add(st.after)
				got, err := env.s.Renew(t.Context(), e, st.increment)
				if tt.steps[i].wantErr != nil {
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("step %d: err = %v, want %v", i, err, st.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				now := env.clock.Now()
				if ttl := got.TTLRemaining(now); ttl != st.wantTTL {
					t.Errorf("step %d: TTL = %v, want %v", i, ttl, st.wantTTL)
				}
				if !got.LastRenewalTime.Equal(now) || !got.CreationTime.Equal(e.CreationTime) {
					t.Errorf("step %d: last renewal %v creation %v", i, got.LastRenewalTime, got.CreationTime)
				}
				looked, err := env.s.Lookup(t.Context(), tok)
				if err != nil || !looked.ExpireAt.Equal(got.ExpireAt) {
					t.Fatalf("step %d: Lookup after renew = %v, %v", i, looked, err)
				}
			}
		})
	}
}

// TestPeriodicOutlivesMaxTTL renews a periodic token well past the system
// max TTL.
func TestPeriodicOutlivesMaxTTL(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{MaxTTL: 4 * time.Hour, DefaultTTL: time.Hour})
	tok, e := env.create(t, CreateRequest{Period: time.Hour})
	for range 30 {
		env.clock.Add(50 * time.Minute)
		if _, err := env.s.Renew(t.Context(), e, 0); err != nil {
			t.Fatal(err)
		}
	}
	assertLive(t, env.s, tok)
	env.clock.Add(time.Hour)
	assertGone(t, env.s, tok)
	if _, err := env.s.Tidy(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestUseConcurrent spends a 10-use token from 50 goroutines at once:
// exactly 10 uses succeed and exactly one of them reports exhaustion.
func TestUseConcurrent(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	tok, _ := env.create(t, CreateRequest{NumUses: 10})
	var ok, exhaustedN atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			e, err := env.s.Lookup(t.Context(), tok)
			if errors.Is(err, ErrNotFound) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			exhausted, err := env.s.Use(t.Context(), e)
			if errors.Is(err, ErrNotFound) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			ok.Add(1)
			if exhausted {
				exhaustedN.Add(1)
				if e.NumUses != 0 {
					t.Errorf("exhausted with %d uses left", e.NumUses)
				}
				if err := env.s.Revoke(t.Context(), e); err != nil {
					t.Error(err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 10 || exhaustedN.Load() != 1 {
		t.Fatalf("%d uses succeeded (%d exhausted), want 10 (1)", ok.Load(), exhaustedN.Load())
	}
	assertGone(t, env.s, tok)
}

func TestUse(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	tok, e := env.create(t, CreateRequest{NumUses: 2})
	if ex, err := env.s.Use(ctx, e); err != nil || ex || e.NumUses != 1 {
		t.Fatalf("first use: %v %v, %d left", ex, err, e.NumUses)
	}
	if got, _ := env.s.Lookup(ctx, tok); got == nil || got.NumUses != 1 {
		t.Fatalf("Lookup after one use: %+v", got)
	}
	if ex, err := env.s.Use(ctx, e); err != nil || !ex {
		t.Fatalf("last use: %v %v", ex, err)
	}
	// Exhausted: refused at once, even before the caller revokes.
	assertGone(t, env.s, tok)
	if _, err := env.s.Use(ctx, &Entry{ID: e.ID, NumUses: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("use past the last: %v", err)
	}
	// A caller that never revokes: ResumeRevocations cleans up.
	if n, err := env.s.ResumeRevocations(ctx); err != nil || n != 1 {
		t.Fatalf("ResumeRevocations = %d, %v", n, err)
	}
	// Unlimited tokens are not written to.
	_, u := env.create(t, CreateRequest{})
	if ex, err := env.s.Use(ctx, u); err != nil || ex {
		t.Fatalf("unlimited use: %v %v", ex, err)
	}
}
