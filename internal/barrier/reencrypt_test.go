package barrier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
)

// fill writes n entries spread over nested folders and returns their keys.
func fill(t *testing.T, b *Barrier, n int, tag string) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("m%d/app-%d/k%03d", i%3, i%7, i)
		mustPut(t, b, keys[i], tag+keys[i])
	}
	return keys
}

func TestRotate(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	ctx := t.Context()
	mustPut(t, b, "old", "o")
	if b.NeedsReencrypt() {
		t.Fatal("NeedsReencrypt before any Rotate")
	}
	info, err := b.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Term != 2 || !info.InstallTime.Equal(fixedNow) || info.Encryptions != 0 {
		t.Fatalf("Rotate = %+v", info)
	}
	if st, _ := b.KeyStatus(); st.Term != 2 {
		t.Fatalf("KeyStatus term %d after Rotate", st.Term)
	}
	mustPut(t, b, "new", "n")
	if got := physTerm(t, phys, "old"); got != 1 {
		t.Errorf("old record has term %d, want 1", got)
	}
	if got := physTerm(t, phys, "new"); got != 2 {
		t.Errorf("new record has term %d, want 2", got)
	}
	if mustGet(t, b, "old") != "o" || mustGet(t, b, "new") != "n" {
		t.Fatal("values changed across Rotate")
	}
	if !b.NeedsReencrypt() {
		t.Error("NeedsReencrypt false after Rotate")
	}
	terms, err := b.Terms()
	if err != nil || len(terms) != 2 || terms[0].Term != 1 || terms[1].Term != 2 {
		t.Fatalf("Terms = %+v, %v", terms, err)
	}

	b2 := reopen(t, phys, root)
	if st, _ := b2.KeyStatus(); st.Term != 2 {
		t.Fatalf("after restart, active term %d", st.Term)
	}
	if mustGet(t, b2, "old") != "o" || mustGet(t, b2, "new") != "n" {
		t.Fatal("values changed across restart")
	}
	if !b2.NeedsReencrypt() {
		t.Error("NeedsReencrypt forgotten across restart")
	}
}

func TestRotateWriteFails(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	ctx := t.Context()
	phys.setBeforePut(func(key string) error {
		if key == keyringPath {
			return errInjected
		}
		return nil
	})
	if _, err := b.Rotate(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Rotate error = %v, want the injected failure", err)
	}
	phys.setBeforePut(nil)
	if st, _ := b.KeyStatus(); st.Term != 1 {
		t.Fatalf("active term %d after a failed Rotate", st.Term)
	}
	mustPut(t, b, "k", "v")
	if got := physTerm(t, phys, "k"); got != 1 {
		t.Fatalf("write after a failed Rotate used term %d", got)
	}
	if st, _ := reopen(t, phys, root).KeyStatus(); st.Term != 1 {
		t.Fatalf("stored keyring has term %d", st.Term)
	}
}

func TestEncryptionCounts(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	ctx := t.Context()
	for i := range 10 {
		mustPut(t, b, fmt.Sprint(i), "v")
	}
	if err := b.Txn(ctx, []storage.Op{storage.Put("a", nil), storage.Put("b", nil)}); err != nil {
		t.Fatal(err)
	}
	st, err := b.KeyStatus()
	if err != nil || st.Encryptions != 12 || st.Term != 1 || !st.InstallTime.Equal(fixedNow) {
		t.Fatalf("KeyStatus = %+v, %v; want term 1, 12 encryptions", st, err)
	}
	// Rotate persists the counts.
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "c", "v")
	terms, _ := reopen(t, phys, root).Terms()
	if len(terms) != 2 || terms[0].Encryptions != 12 || terms[1].Encryptions != 0 {
		t.Fatalf("after restart: %+v; want 12 and 0 (the last Put was never persisted)", terms)
	}
}

func TestEncryptionCountsFlushed(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	for i := range flushEvery {
		mustPut(t, b, fmt.Sprint(i), "v")
	}
	// No Rotate, no Seal: the counts reached the keyring on their own.
	st, _ := reopen(t, phys, root).KeyStatus()
	if st.Encryptions != flushEvery {
		t.Fatalf("after restart, %d encryptions; want %d", st.Encryptions, flushEvery)
	}
}

func TestEncryptionCountsFlushFails(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	phys := &hookBackend{Backend: newPhys()}
	var logged bytes.Buffer
	b := New(phys, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	root, _ := GenerateKey()
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	phys.setBeforePut(func(key string) error {
		if key == keyringPath {
			return errInjected
		}
		return nil
	})
	for i := range flushEvery + 1 {
		mustPut(t, b, fmt.Sprint(i), "v")
	}
	if !strings.Contains(logged.String(), "could not persist encryption counts") {
		t.Errorf("failed flush not logged:\n%s", logged.String())
	}
	if st, _ := b.KeyStatus(); st.Encryptions != flushEvery+1 {
		t.Errorf("in-memory count %d after a failed flush", st.Encryptions)
	}
	phys.setBeforePut(nil)
	checkConsistent(t, phys, root)
}

func TestReencrypt(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	ctx := t.Context()
	if n, err := b.Reencrypt(ctx); n != 0 || err != nil {
		t.Fatalf("Reencrypt with nothing to do = %d, %v", n, err)
	}
	old := fill(t, b, 300, "v1:")
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "m0/fresh", "v2")
	n, err := b.Reencrypt(ctx)
	if err != nil || n != len(old) {
		t.Fatalf("Reencrypt = %d, %v; want %d", n, err, len(old))
	}
	if b.NeedsReencrypt() {
		t.Error("NeedsReencrypt after a full pass")
	}
	for _, k := range append(old, "m0/fresh") {
		if got := physTerm(t, phys, k); got != 2 {
			t.Fatalf("%s has term %d after Reencrypt", k, got)
		}
	}
	for _, k := range old {
		if got := mustGet(t, b, k); got != "v1:"+k {
			t.Fatalf("%s = %q", k, got)
		}
	}
	if n, err := b.Reencrypt(ctx); n != 0 || err != nil {
		t.Fatalf("second pass = %d, %v", n, err)
	}
	b2 := reopen(t, phys, root)
	if b2.NeedsReencrypt() {
		t.Error("after restart, NeedsReencrypt forgot the finished pass")
	}
	if n, err := b2.Reencrypt(ctx); n != 0 || err != nil {
		t.Fatalf("pass after restart = %d, %v", n, err)
	}
	if st, _ := b.KeyStatus(); st.Encryptions != uint64(len(old))+1 {
		t.Errorf("term 2 sealed %d records, want %d", st.Encryptions, len(old)+1)
	}
}

// TestReencryptWriterWins runs a logical write to a record between the
// pass reading it and the pass's compare-and-set; the pass must skip it.
func TestReencryptWriterWins(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	keys := fill(t, b, 20, "old:")
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	victim := dataPrefix + keys[7]
	phys.setBeforeTxn(func(ops []storage.Op) error {
		if len(ops) == 2 && ops[0].Key == victim {
			// The concurrent writer. It holds no barrier lock here (this
			// hook runs inside the pass), so it goes through the same
			// encrypt step a Put would and writes physically.
			rec, err := b.encrypt(ctx, keys[7], []byte("written during the pass"))
			if err != nil {
				return err
			}
			return phys.Backend.Put(ctx, victim, rec)
		}
		return nil
	})
	n, err := b.Reencrypt(ctx)
	if err != nil || n != len(keys)-1 {
		t.Fatalf("Reencrypt = %d, %v; want %d (the raced record skipped)", n, err, len(keys)-1)
	}
	if got := mustGet(t, b, keys[7]); got != "written during the pass" {
		t.Fatalf("the pass overwrote a concurrent write: %q", got)
	}
	if b.NeedsReencrypt() {
		t.Error("NeedsReencrypt after the pass")
	}
}

// TestReencryptConcurrentWriters runs real writers beside the pass (best
// under -race): every final value is the writer's last, and every record
// ends under the new term.
func TestReencryptConcurrentWriters(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	keys := fill(t, b, 400, "old:")
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	const writers = 4
	last := make([]map[string]string, writers)
	var wg sync.WaitGroup
	for w := range writers {
		last[w] = map[string]string{}
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(w), 1))
			for i := range 150 {
				// Writer w owns keys with index = w mod writers.
				k := keys[(r.IntN(len(keys)/writers))*writers+w]
				v := fmt.Sprintf("w%d-%d", w, i)
				if i%3 == 0 {
					err := b.Txn(ctx, []storage.Op{storage.CheckEqual(k, []byte(valueOf(last[w], k))), storage.Put(k, []byte(v))})
					if err != nil {
						t.Errorf("Txn on %s: %v", k, err)
						return
					}
				} else if err := b.Put(ctx, k, []byte(v)); err != nil {
					t.Errorf("Put %s: %v", k, err)
					return
				}
				last[w][k] = v
			}
		})
	}
	n, err := b.Reencrypt(ctx)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote %d of %d records", n, len(keys))
	for w := range writers {
		for k, v := range last[w] {
			if got := mustGet(t, b, k); got != v {
				t.Fatalf("%s = %q, want %q from writer %d", k, got, v, w)
			}
		}
	}
	for _, k := range keys {
		if got := physTerm(t, phys, k); got != 2 {
			t.Fatalf("%s has term %d after the pass", k, got)
		}
	}
}

func valueOf(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "old:" + k
}

// TestReencryptResume cancels a pass midway, then runs a pass on a new
// barrier over the same store, as after a restart: it must pick up after
// the saved cursor rather than re-read everything, and finish.
func TestReencryptResume(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	keys := fill(t, b, 3*saveEvery, "v1:")
	if _, err := b.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	const stopAfter = saveEvery + 100
	rewrites := 0
	phys.setBeforeTxn(func(ops []storage.Op) error {
		if rewrites++; rewrites == stopAfter {
			cancel()
		}
		return nil
	})
	n, err := b.Reencrypt(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pass: %d, %v; want context.Canceled", n, err)
	}
	// The rewrite during which ctx was cancelled fails.
	const done = stopAfter - 1
	if n != done {
		t.Fatalf("cancelled pass rewrote %d, want %d", n, done)
	}
	if !b.NeedsReencrypt() {
		t.Fatal("NeedsReencrypt false after an unfinished pass")
	}
	phys.setBeforeTxn(nil)
	b.Seal() // the old process goes away

	b2 := reopen(t, phys, root)
	if got := b2.prog.cursorAfter; got == "" || b2.prog.cursorTerm != 2 {
		t.Fatalf("restarted barrier has cursor %q for term %d", got, b2.prog.cursorTerm)
	}
	readsBefore := phys.gets()
	n2, err := b2.Reencrypt(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n+n2 != len(keys) {
		t.Fatalf("passes rewrote %d + %d, want %d in all", n, n2, len(keys))
	}
	if reads := phys.gets() - readsBefore; reads != len(keys)-done {
		t.Errorf("resumed pass read %d records, want %d (only those after the cursor)", reads, len(keys)-done)
	}
	if b2.NeedsReencrypt() {
		t.Fatal("NeedsReencrypt after the resumed pass")
	}
	for _, k := range keys {
		if physTerm(t, phys, k) != 2 || mustGet(t, b2, k) != "v1:"+k {
			t.Fatalf("%s not re-encrypted intact", k)
		}
	}
	if b2.prog.cursorTerm != 0 || b2.prog.cursorAfter != "" {
		t.Errorf("finished pass left a cursor: %+v", b2.prog)
	}
}

// TestReencryptResumeAfterCrash: no chance to save on the way out; the
// periodic saves still let the next pass skip what was done.
func TestReencryptResumeAfterCrash(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	keys := fill(t, b, 2*saveEvery+10, "v1:")
	if _, err := b.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	rewrites := 0
	phys.setBeforeTxn(func(ops []storage.Op) error {
		if rewrites++; rewrites > saveEvery+5 {
			return errInjected // the process dies: nothing more reaches storage
		}
		return nil
	})
	phys.setBeforePut(func(key string) error {
		if rewrites > saveEvery+5 {
			return errInjected
		}
		return nil
	})
	if _, err := b.Reencrypt(t.Context()); !errors.Is(err, errInjected) {
		t.Fatalf("error = %v, want the injected failure", err)
	}
	phys.setBeforeTxn(nil)
	phys.setBeforePut(nil)

	b2 := reopen(t, phys, root)
	readsBefore := phys.gets()
	n, err := b2.Reencrypt(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if reads := phys.gets() - readsBefore; reads != len(keys)-saveEvery {
		t.Errorf("pass after the crash read %d records, want %d", reads, len(keys)-saveEvery)
	}
	if n != len(keys)-(saveEvery+5) {
		t.Errorf("pass after the crash rewrote %d, want %d", n, len(keys)-(saveEvery+5))
	}
	if b2.NeedsReencrypt() {
		t.Fatal("NeedsReencrypt after the pass")
	}
}

func TestReencryptRotateMidPass(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	keys := fill(t, b, 50, "v1:")
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rewrites := 0
	rotated := make(chan error, 1)
	phys.setBeforeTxn(func(ops []storage.Op) error {
		if rewrites++; rewrites == 10 {
			// Rotate from another goroutine: it must wait for this
			// rewrite, which holds the barrier's lock, so do not wait.
			go func() {
				_, err := b.Rotate(ctx)
				rotated <- err
			}()
		}
		return nil
	})
	if _, err := b.Reencrypt(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-rotated; err != nil {
		t.Fatal(err)
	}
	if !b.NeedsReencrypt() {
		t.Fatal("NeedsReencrypt false with term 3 active after a pass to term 2")
	}
	phys.setBeforeTxn(nil)
	if _, err := b.Reencrypt(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if got := physTerm(t, phys, k); got != 3 {
			t.Fatalf("%s has term %d", k, got)
		}
	}
	if b.NeedsReencrypt() {
		t.Fatal("NeedsReencrypt after the second pass")
	}
}

func TestReencryptStopsOnSeal(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	fill(t, b, 30, "v1:")
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rewrites := 0
	sealed := make(chan struct{})
	phys.setBeforeTxn(func(ops []storage.Op) error {
		if rewrites++; rewrites == 5 {
			go func() { b.Seal(); close(sealed) }()
			// This hook runs under the pass's shared lock, so Seal
			// cannot finish yet; wait until it is queued for the lock
			// (TryRLock fails once a writer waits), so the pass's next
			// record must wait for Seal.
			for b.mu.TryRLock() {
				b.mu.RUnlock()
				runtime.Gosched()
			}
		}
		return nil
	})
	_, err := b.Reencrypt(ctx)
	<-sealed
	if !errors.Is(err, ErrSealed) {
		t.Fatalf("error = %v, want ErrSealed", err)
	}
}

func TestReencryptDamagedRecord(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	fill(t, b, 5, "v1:")
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rec, _ := phys.Get(ctx, dataPrefix+"m1/app-1/k001")
	rec[len(rec)-1] ^= 1
	if err := phys.Put(ctx, dataPrefix+"m1/app-1/k001", rec); err != nil {
		t.Fatal(err)
	}
	_, err := b.Reencrypt(ctx)
	if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "m1/app-1/k001") {
		t.Fatalf("error = %v, want ErrDecrypt naming the record", err)
	}
	if !b.NeedsReencrypt() {
		t.Fatal("a failed pass marked re-encryption done")
	}
	phys.noCheck = true
}

func TestReencryptCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	b, _, _ := newTestBarrier(t)
	b.pass <- struct{}{} // a pass is running
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Reencrypt(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	<-b.pass
}

// TestWalkOrder checks walk against a sort of all keys, for random key
// sets full of the awkward neighbours of "/" ('-' and '.' sort before it,
// '0' after), and for every possible resume point.
func TestWalkOrder(t *testing.T) {
	t.Parallel()
	r := mrand.New(mrand.NewPCG(7, 7))
	parts := []string{"a", "a-", "a.b", "a0", "b", "ab", "a-b"}
	for range 30 {
		phys := newPhys()
		b := New(phys, Options{})
		var all []string
		for range 1 + r.IntN(25) {
			depth := 1 + r.IntN(3)
			segs := make([]string, depth)
			for i := range segs {
				segs[i] = parts[r.IntN(len(parts))]
			}
			k := dataPrefix + strings.Join(segs, "/")
			if !slices.Contains(all, k) {
				all = append(all, k)
				if err := phys.Put(t.Context(), k, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
		}
		slices.Sort(all)
		for i := -1; i < len(all); i++ {
			after := ""
			if i >= 0 {
				after = all[i]
			}
			var got []string
			err := b.walk(t.Context(), dataPrefix, after, func(_ context.Context, k string) error {
				got = append(got, k)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := all[i+1:]; !slices.Equal(got, want) {
				t.Fatalf("walk after %q:\n got %q\nwant %q", after, got, want)
			}
		}
	}
}
