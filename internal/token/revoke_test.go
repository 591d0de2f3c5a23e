package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

// node is a token in a test tree.
type node struct {
	tok  string
	e    *Entry
	kids []*node
}

// all returns the tokens of n's subtree, n included.
func (n *node) all() []string {
	out := []string{n.tok}
	for _, k := range n.kids {
		out = append(out, k.all()...)
	}
	return out
}

// buildTree creates depth levels of fanout children under n.
func buildTree(t *testing.T, s *Store, n *node, depth, fanout int) {
	t.Helper()
	if depth == 0 {
		return
	}
	for range fanout {
		tok, e, err := s.Create(t.Context(), CreateRequest{Parent: n.e, Policies: []string{"default"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		k := &node{tok: tok, e: e}
		n.kids = append(n.kids, k)
		buildTree(t, s, k, depth-1, fanout)
	}
}

func newRoot(t *testing.T, s *Store) *node {
	t.Helper()
	tok, e, err := s.Create(t.Context(), CreateRequest{Policies: []string{"root"}})
	if err != nil {
		t.Fatal(err)
	}
	return &node{tok: tok, e: e}
}

func TestRevokeTree(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	root := newRoot(t, env.s)
	buildTree(t, env.s, root, 5, 3) // 3+9+27+81+243 = 363 descendants

	victim, spared := root.kids[0], root.kids[1:]
	if err := env.s.Revoke(ctx, victim.e); err != nil {
		t.Fatal(err)
	}
	assertGone(t, env.s, victim.all()...)
	assertLive(t, env.s, root.tok)
	for _, k := range spared {
		assertLive(t, env.s, k.all()...)
	}
	if n, _ := env.s.Count(ctx); n != 1+2*121 {
		t.Errorf("Count = %d, want %d", n, 1+2*121)
	}
	if err := env.s.Revoke(ctx, victim.e); err != nil {
		t.Errorf("second Revoke: %v", err)
	}
	if err := env.s.Revoke(ctx, root.e); err != nil {
		t.Fatal(err)
	}
	assertGone(t, env.s, root.all()...)
	if all := dump(t, env.b); len(all) != 1 {
		t.Errorf("after revoking everything, keys left: %q", sortedKeys(all))
	}
}

func TestRevokeOrphan(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	root := newRoot(t, env.s)
	buildTree(t, env.s, root, 3, 2)
	a := root.kids[0]
	if err := env.s.RevokeOrphan(ctx, a.e); err != nil {
		t.Fatal(err)
	}
	assertGone(t, env.s, a.tok)
	for _, k := range a.kids {
		assertLive(t, env.s, k.all()...)
		e, _ := env.s.Lookup(ctx, k.tok)
		if e == nil || !e.Orphan() {
			t.Errorf("child of orphan-revoked token is not an orphan: %+v", e)
		}
	}
	// The orphans no longer hang from root.
	if err := env.s.Revoke(ctx, root.e); err != nil {
		t.Fatal(err)
	}
	assertGone(t, env.s, root.tok)
	assertGone(t, env.s, root.kids[1].all()...)
	for _, k := range a.kids {
		assertLive(t, env.s, k.all()...)
		if err := env.s.Revoke(ctx, k.e); err != nil {
			t.Fatal(err)
		}
		assertGone(t, env.s, k.all()...)
	}
}

func TestRevokeAccessor(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	tok, e := env.create(t, CreateRequest{})
	got, err := env.s.LookupAccessor(t.Context(), e.Accessor)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.s.Revoke(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	assertGone(t, env.s, tok)
	if _, err := env.s.LookupAccessor(t.Context(), e.Accessor); !errors.Is(err, ErrNotFound) {
		t.Errorf("accessor of revoked token: %v", err)
	}
}

var errInjected = errors.New("injected storage failure")

// faultyBackend fails every deleting write after a budget is spent, as a
// crash or lost connection would interrupt a revocation.
type faultyBackend struct {
	storage.Backend
	mu   sync.Mutex // guards left
	left int        // deleting writes still allowed; negative: unlimited
}

func (f *faultyBackend) setBudget(n int) {
	f.mu.Lock()
	f.left = n
	f.mu.Unlock()
}

func (f *faultyBackend) allow(ops []storage.Op) error {
	for _, op := range ops {
		if op.Kind != storage.OpDelete {
			continue
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.left == 0 {
			return errInjected
		}
		if f.left > 0 {
			f.left--
		}
		return nil
	}
	return nil
}

func (f *faultyBackend) Txn(ctx context.Context, ops []storage.Op) error {
	if err := f.allow(ops); err != nil {
		return err
	}
	return f.Backend.Txn(ctx, ops)
}

func (f *faultyBackend) Delete(ctx context.Context, key string) error {
	if err := f.allow([]storage.Op{storage.Delete(key)}); err != nil {
		return err
	}
	return f.Backend.Delete(ctx, key)
}

// TestRevokeInterrupted cuts a revocation short after every possible
// number of deleting writes, checks that the tokens concerned are already
// refused (tree) or unaffected (orphan children), and that a new Store on
// the same storage finishes the job.
func TestRevokeInterrupted(t *testing.T) {
	t.Parallel()
	const nodes = 1 + 2 + 4 // the target's subtree: depth 3, fan-out 2, one level down
	for _, orphan := range []bool{false, true} {
		steps := nodes // one deleting Txn per token
		if orphan {
			steps = 2 + 1 // one per child, then the token itself
		}
		for budget := 0; budget <= steps; budget++ {
			t.Run(fmt.Sprintf("orphan=%v/after %d deletes", orphan, budget), func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				b := newBackend()
				t.Cleanup(func() { checkInvariants(t, b) })
				fb := &faultyBackend{Backend: b, left: -1}
				clock := newClock()
				s, err := New(ctx, fb, Options{Now: clock.Now})
				if err != nil {
					t.Fatal(err)
				}
				root := newRoot(t, s)
				buildTree(t, s, root, 3, 2)
				target := root.kids[0]

				fb.setBudget(budget)
				revoke := s.Revoke
				if orphan {
					revoke = s.RevokeOrphan
				}
				err = revoke(ctx, target.e)
				if complete := budget == steps; complete != (err == nil) {
					t.Fatalf("revoke with budget %d: err = %v", budget, err)
				}
				if err != nil && !errors.Is(err, errInjected) {
					t.Fatalf("err = %v, want the injected failure", err)
				}
				assertGone(t, s, target.tok)
				if orphan {
					for _, k := range target.kids {
						assertLive(t, s, k.all()...)
					}
				} else {
					assertGone(t, s, target.all()...)
				}

				// "Restart": a new Store on the same storage, no faults.
				s2, err := New(ctx, b, Options{Now: clock.Now})
				if err != nil {
					t.Fatal(err)
				}
				n, err := s2.ResumeRevocations(ctx)
				if err != nil {
					t.Fatal(err)
				}
				want := 1 // the interrupted revocation
				if budget == steps {
					want = 0 // nothing was interrupted
				}
				if n != want {
					t.Errorf("ResumeRevocations completed %d, want %d", n, want)
				}
				assertGone(t, s2, target.tok)
				if orphan {
					for _, k := range target.kids {
						assertLive(t, s2, k.all()...)
					}
				} else {
					assertGone(t, s2, target.all()...)
				}
				assertLive(t, s2, root.tok)
				assertLive(t, s2, root.kids[1].all()...)
			})
		}
	}
}

// TestResumeMarkerOnly resumes from a bare marker, as if a revocation had
// been decided but nothing else written.
func TestResumeMarkerOnly(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	root := newRoot(t, env.s)
	buildTree(t, env.s, root, 2, 3)
	target := root.kids[1]
	if err := env.b.Put(ctx, revokeKey(target.e.ID), markerValue(revokeTree, env.clock.Now())); err != nil {
		t.Fatal(err)
	}
	// A marker for a token that no longer exists is just removed.
	if err := env.b.Put(ctx, revokeKey(root.e.ID[:60]+"beef"), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	s2, err := New(ctx, env.b, Options{Now: env.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s2.ResumeRevocations(ctx); err != nil || n != 2 {
		t.Fatalf("ResumeRevocations = %d, %v; want 2", n, err)
	}
	assertGone(t, s2, target.all()...)
	assertLive(t, s2, root.tok)
	assertLive(t, s2, root.kids[0].all()...)
	assertLive(t, s2, root.kids[2].all()...)
}

// TestRevokeRacesCreate creates children under a tree while it is being
// revoked: every child either failed to be created or is gone afterwards.
func TestRevokeRacesCreate(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	root := newRoot(t, env.s)
	buildTree(t, env.s, root, 2, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards created
	var created []string
	for _, k := range root.kids {
		for _, parent := range append([]*node{k}, k.kids...) {
			wg.Go(func() {
				for {
					tok, _, err := env.s.Create(ctx, CreateRequest{Parent: parent.e, TTL: time.Hour})
					if errors.Is(err, ErrNotFound) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					created = append(created, tok)
					mu.Unlock()
				}
			})
		}
	}
	time.Sleep(5 * time.Millisecond)
	if err := env.s.Revoke(ctx, root.e); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	assertGone(t, env.s, root.all()...)
	assertGone(t, env.s, created...)
	if n, _ := env.s.Count(ctx); n != 0 {
		t.Errorf("%d tokens left after revoking the whole tree (%d created during it)", n, len(created))
	}
}
