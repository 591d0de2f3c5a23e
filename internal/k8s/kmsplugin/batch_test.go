package kmsplugin

import (
	"bytes"
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/kms/pkg/service"
)

// gated installs a gate on f's transit requests and returns it.
func gated(f *fakeCoffer) chan struct{} {
	g := make(chan struct{})
	f.set(func(f *fakeCoffer) { f.gate = g })
	return g
}

// legacy returns n random seeds and Decrypt requests for FormatV1
// ciphertexts of them (transit ciphertexts, as plugins before local KEKs
// wrote) made directly with f, so that decrypting one takes a call to
// coffer.
func legacy(t *testing.T, f *fakeCoffer, n int) ([][]byte, []*service.DecryptRequest) {
	deks := make([][]byte, n)
	reqs := make([]*service.DecryptRequest, n)
	for i := range n {
		deks[i] = randomDEK(t)
		reqs[i] = &service.DecryptRequest{Ciphertext: []byte(f.encryptDirect(deks[i])), KeyID: "transit/kube:v1",
			Annotations: map[string][]byte{AnnotationFormat: []byte(FormatV1)}}
	}
	return deks, reqs
}

// TestBatchLone: a call that finds nothing in flight is sent at once as a
// plain request.
func TestBatchLone(t *testing.T) {
	t.Parallel()
	f := newFakeCoffer(t)
	p, _, _ := newTestPlugin(t, f, nil)
	deks, reqs := legacy(t, f, 1)
	got, err := p.Decrypt(t.Context(), "", reqs[0])
	if err != nil || !bytes.Equal(got, deks[0]) {
		t.Fatalf("Decrypt = %x, %v", got, err)
	}
	if s := f.transitSizes(); !slices.Equal(s, []int{0}) {
		t.Errorf("transit requests %v, want one plain one", s)
	}
}

// TestBatchCoalesce: callers arriving while a request is in flight go out
// together in one batch_input request when it returns, and each gets its
// own result.
func TestBatchCoalesce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, logs := newTestPlugin(t, f, func(c *Config) { c.CacheSize = -1 })
		const n = 10
		deks, reqs := legacy(t, f, n)
		gate := gated(f)
		got := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { got[i], errs[i] = p.Decrypt(ctx, "", reqs[i]) })
			synctest.Wait() // the first is in flight, the rest queue up in order
		}
		close(gate)
		wg.Wait()
		for i := range n {
			if errs[i] != nil || !bytes.Equal(got[i], deks[i]) {
				t.Fatalf("Decrypt %d = %x, %v; want %x", i, got[i], errs[i], deks[i])
			}
		}
		if s := f.transitSizes(); !slices.Equal(s, []int{0, n - 1}) {
			t.Fatalf("decrypt requests %v, want a plain one and one batch of %d", s, n-1)
		}
		if v := metricValue(t, p.metrics.requests.WithLabelValues("Decrypt", "OK")); v != n {
			t.Errorf("Decrypt OK requests = %v, want %d", v, n)
		}
		for _, d := range deks {
			noKeyMaterial(t, logs.String(), d)
		}
	})
}

// TestBatchBound: a batch holds at most maxBatch items; the rest go in
// the next one.
func TestBatchBound(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, nil)
		_, reqs := legacy(t, f, maxBatch+6)
		gate := gated(f)
		var wg sync.WaitGroup
		for _, req := range reqs {
			wg.Go(func() {
				if _, err := p.Decrypt(t.Context(), "", req); err != nil {
					t.Error(err)
				}
			})
			synctest.Wait()
		}
		close(gate)
		wg.Wait()
		if s := f.transitSizes(); !slices.Equal(s, []int{0, maxBatch, 5}) {
			t.Fatalf("decrypt requests %v, want 1 plain, %d, 5", s, maxBatch)
		}
	})
}

// TestBatchItemError: an item coffer refuses fails its own caller, with
// the error a plain request gives, and no other.
func TestBatchItemError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, func(c *Config) { c.CacheSize = -1 })
		deks, reqs := legacy(t, f, 4)
		// Tampered: passes the plugin's checks, fails coffer's.
		prefix, body, _ := strings.Cut(string(reqs[2].Ciphertext), ":v1:")
		raw, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-1] ^= 1
		reqs[2].Ciphertext = []byte(prefix + ":v1:" + base64.StdEncoding.EncodeToString(raw))
		_, lone := p.Decrypt(ctx, "", reqs[2])
		wantCode(t, lone, codes.InvalidArgument)

		gate := gated(f)
		got := make([][]byte, len(reqs))
		errs := make([]error, len(reqs))
		var wg sync.WaitGroup
		for i := range reqs {
			wg.Go(func() { got[i], errs[i] = p.Decrypt(ctx, "", reqs[i]) })
			synctest.Wait()
		}
		close(gate)
		wg.Wait()
		for i := range reqs {
			if i == 2 {
				if errs[i] == nil || errs[i].Error() != lone.Error() {
					t.Errorf("bad item: err = %v, want %v", errs[i], lone)
				}
				continue
			}
			if errs[i] != nil || !bytes.Equal(got[i], deks[i]) {
				t.Errorf("Decrypt %d = %x, %v", i, got[i], errs[i])
			}
		}
		if s := f.transitSizes(); s[len(s)-1] != 3 {
			t.Errorf("transit requests %v, want a batch of 3 last", s)
		}
	})
}

// TestBatchWholeFailure: when the batch request itself fails, every
// caller in it gets the error a plain request gives.
func TestBatchWholeFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(f *fakeCoffer, tr *handlerTransport)
		code  codes.Code
	}{
		{"sealed", func(f *fakeCoffer, _ *handlerTransport) { f.set(func(f *fakeCoffer) { f.sealed = true }) }, codes.Unavailable},
		{"denied", func(f *fakeCoffer, _ *handlerTransport) { f.set(func(f *fakeCoffer) { clear(f.tokens) }) }, codes.PermissionDenied},
		{"unreachable", func(_ *fakeCoffer, tr *handlerTransport) { tr.down.Store(true) }, codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				f := newFakeCoffer(t)
				p, tr, _ := newTestPlugin(t, f, nil)
				const n = 5
				_, reqs := legacy(t, f, n+1)
				gate := gated(f)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() { _, errs[i] = p.Decrypt(ctx, "", reqs[i]) })
					synctest.Wait()
				}
				tc.start(f, tr)
				gate <- struct{}{} // the first, already past the checks, succeeds
				synctest.Wait()
				close(gate)
				wg.Wait()
				_, lone := p.Decrypt(ctx, "", reqs[n])
				wantCode(t, lone, tc.code)
				if errs[0] != nil {
					t.Errorf("first call: %v", errs[0])
				}
				for i := 1; i < n; i++ {
					if errs[i] == nil || errs[i].Error() != lone.Error() {
						t.Errorf("call %d: err = %v, want %v", i, errs[i], lone)
					}
				}
			})
		})
	}
}

// TestBatchCancel: a caller whose context ends stops waiting, queued or
// in a batch in flight; the others in its batch get their results.
func TestBatchCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, nil)
		const n = 5
		deks, reqs := legacy(t, f, n)
		gate := gated(f)
		got := make([][]byte, n)
		errs := make([]error, n)
		ctxs := make([]context.Context, n)
		cancels := make([]context.CancelFunc, n)
		var wg sync.WaitGroup
		for i := range n {
			ctxs[i], cancels[i] = context.WithCancel(ctx)
			wg.Go(func() { got[i], errs[i] = p.Decrypt(ctxs[i], "", reqs[i]) })
			synctest.Wait()
		}
		cancels[1]() // queued
		synctest.Wait()
		if errs[1] == nil || status.Code(errs[1]) != codes.Unavailable || !strings.Contains(errs[1].Error(), "context canceled") {
			t.Fatalf("cancelled queued caller: %v", errs[1])
		}
		gate <- struct{}{} // the first returns; the batch of 2, 3, 4 goes out
		synctest.Wait()
		cancels[3]() // in flight
		synctest.Wait()
		if errs[3] == nil || status.Code(errs[3]) != codes.Unavailable {
			t.Fatalf("cancelled caller in flight: %v", errs[3])
		}
		close(gate)
		wg.Wait()
		for _, i := range []int{0, 2, 4} {
			if errs[i] != nil || !bytes.Equal(got[i], deks[i]) {
				t.Errorf("Decrypt %d = %x, %v", i, got[i], errs[i])
			}
		}
		if s := f.transitSizes(); !slices.Equal(s, []int{0, 3}) {
			t.Errorf("transit requests %v, want a plain one and a batch of 3", s)
		}
		for _, c := range cancels {
			c()
		}
	})
}
