package kmsplugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kms/pkg/service"
)

// logBuffer collects log output for checks that key material never
// appears in it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestPlugin builds a plugin on f that already holds a valid token
// (the token manager is not running); mod adjusts the config.
func newTestPlugin(t *testing.T, f *fakeCoffer, mod func(*Config)) (*Plugin, *handlerTransport, *logBuffer) {
	t.Helper()
	c, tr := fakeClient(t, f)
	tok := f.addToken(0, false)
	logs := &logBuffer{}
	cfg := Config{Client: c, Auth: staticAuth{tok}, Key: f.key, Logger: logs.logger()}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.tokens.cur.Store(c.WithToken(tok))
	return p, tr, logs
}

func randomDEK(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("err = %v (code %v), want code %v", err, got, want)
	}
}

func noKeyMaterial(t *testing.T, logs string, deks ...[]byte) {
	t.Helper()
	for _, d := range deks {
		for _, form := range []string{string(d), hex.EncodeToString(d), base64.StdEncoding.EncodeToString(d),
			base64.RawStdEncoding.EncodeToString(d)} {
			if strings.Contains(logs, form) {
				t.Fatalf("logs hold a data key:\n%s", logs)
			}
		}
	}
}

func TestEncryptDecrypt(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFakeCoffer(t)
	p, _, logs := newTestPlugin(t, f, nil)
	dek := randomDEK(t)

	resp, err := p.Encrypt(ctx, "uid-1", dek)
	if err != nil {
		t.Fatal(err)
	}
	if resp.KeyID != "transit/kube:v1" {
		t.Errorf("key id = %q, want transit/kube:v1", resp.KeyID)
	}
	if len(resp.Ciphertext) != nonceSize+len(dek)+tagSize || bytes.Contains(resp.Ciphertext, dek) {
		t.Errorf("ciphertext = %x", resp.Ciphertext)
	}
	// The apiserver's own rule for annotation keys (k8s.io/apiserver
	// kmsv2.validateAnnotations).
	for k := range resp.Annotations {
		if errs := validation.IsFullyQualifiedDomainName(field.NewPath("annotations"), k); len(errs) > 0 {
			t.Errorf("annotation key %q: %v", k, errs.ToAggregate())
		}
	}
	if string(resp.Annotations[AnnotationFormat]) != FormatLocalKEK || !bytes.HasPrefix(resp.Annotations[AnnotationKEK], []byte("vault:v1:")) {
		t.Errorf("annotations = %q", resp.Annotations)
	}
	// The second seed goes under the same KEK: no call to coffer.
	dek2 := randomDEK(t)
	resp2, err := p.Encrypt(ctx, "uid-1b", dek2)
	if err != nil {
		t.Fatal(err)
	}
	if n := metricValue(t, p.metrics.keks); n != 1 {
		t.Errorf("KEKs made for two seeds = %v, want 1", n)
	}
	if !bytes.Equal(resp2.Annotations[AnnotationKEK], resp.Annotations[AnnotationKEK]) || bytes.Equal(resp2.Ciphertext[:nonceSize], resp.Ciphertext[:nonceSize]) {
		t.Errorf("second seed: KEK %q (first %q), nonce %x (first %x)", resp2.Annotations[AnnotationKEK], resp.Annotations[AnnotationKEK],
			resp2.Ciphertext[:nonceSize], resp.Ciphertext[:nonceSize])
	}

	// A second plugin has nothing cached and must ask coffer, once for
	// the KEK: every seed under it then opens without coffer.
	fresh, _, freshLogs := newTestPlugin(t, f, nil)
	base := f.count("transit/decrypt/kube") // the encrypting plugin's health round trip
	req := &service.DecryptRequest{Ciphertext: resp.Ciphertext, KeyID: resp.KeyID, Annotations: resp.Annotations}
	got, err := fresh.Decrypt(ctx, "uid-2", req)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Decrypt = %x, %v; want %x", got, err, dek)
	}
	if n := f.count("transit/decrypt/kube") - base; n != 1 {
		t.Errorf("coffer decrypt calls = %d, want 1", n)
	}
	got, err = fresh.Decrypt(ctx, "uid-3", req)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("second Decrypt = %x, %v", got, err)
	}
	if n := f.count("transit/decrypt/kube") - base; n != 1 {
		t.Errorf("coffer decrypt calls after a repeat = %d, want 1 (cached)", n)
	}
	req2 := &service.DecryptRequest{Ciphertext: resp2.Ciphertext, KeyID: resp2.KeyID, Annotations: resp2.Annotations}
	if got, err := fresh.Decrypt(ctx, "uid-3b", req2); err != nil || !bytes.Equal(got, dek2) {
		t.Fatalf("Decrypt of the second seed = %x, %v; want %x", got, err, dek2)
	}
	if n := f.count("transit/decrypt/kube") - base; n != 1 {
		t.Errorf("coffer decrypt calls after a second seed under the same KEK = %d, want 1", n)
	}
	if hits := metricValue(t, fresh.metrics.cacheHits); hits != 2 {
		t.Errorf("cache hits = %v, want 2", hits)
	}
	// The encrypting plugin holds the KEK.
	if _, err := p.Decrypt(ctx, "uid-4", req); err != nil || f.count("transit/decrypt/kube")-base != 1 {
		t.Errorf("Decrypt by the encrypting plugin: %v, coffer calls %d", err, f.count("transit/decrypt/kube")-base)
	}

	st, err := p.Status(ctx)
	if err != nil || st.Healthz != "ok" || st.Version != "v2" || st.KeyID != "transit/kube:v1" {
		t.Errorf("Status = %+v, %v", st, err)
	}
	noKeyMaterial(t, logs.String()+freshLogs.String(), dek, dek2)

	// Ciphertexts of plugins before local KEKs (FormatV1: a transit
	// ciphertext of the seed) still decrypt.
	old := randomDEK(t)
	for _, ann := range []map[string][]byte{nil, {AnnotationFormat: []byte(FormatV1)}} {
		req := &service.DecryptRequest{Ciphertext: []byte(f.encryptDirect(old)), KeyID: "transit/kube:v1", Annotations: ann}
		if got, err := p.Decrypt(ctx, "uid-5", req); err != nil || !bytes.Equal(got, old) {
			t.Errorf("Decrypt of a %s ciphertext (annotations %q) = %x, %v", FormatV1, ann, got, err)
		}
	}
}

func TestKeyIDFollowsRotation(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, func(c *Config) { c.CacheSize = -1 })
		old, err := p.Encrypt(ctx, "", randomDEK(t))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := p.Status(ctx)
		if st.KeyID != "transit/kube:v1" {
			t.Fatalf("key id = %q", st.KeyID)
		}

		f.rotate()
		if st, _ := p.Status(ctx); st.KeyID != "transit/kube:v1" || st.Healthz != "ok" {
			t.Errorf("Status within the health TTL = %+v, want the remembered v1", st)
		}
		time.Sleep(DefaultHealthTTL)
		if st, _ := p.Status(ctx); st.KeyID != "transit/kube:v2" {
			t.Errorf("key id after rotation = %q, want transit/kube:v2", st.KeyID)
		}
		resp, err := p.Encrypt(ctx, "", randomDEK(t))
		if err != nil || resp.KeyID != "transit/kube:v2" || !bytes.HasPrefix(resp.Annotations[AnnotationKEK], []byte("vault:v2:")) {
			t.Fatalf("Encrypt after rotation = %+v, %v", resp, err)
		}
		// Data under the old key id still opens, with its own version
		// (the cache is off: coffer unwraps the old KEK).
		before := f.count("transit/decrypt/kube")
		if _, err := p.Decrypt(ctx, "", &service.DecryptRequest{Ciphertext: old.Ciphertext, KeyID: old.KeyID, Annotations: old.Annotations}); err != nil {
			t.Errorf("Decrypt of a v1 ciphertext: %v", err)
		}
		if f.count("transit/decrypt/kube") != before+1 {
			t.Errorf("the old KEK was not unwrapped by coffer")
		}
		if got := metricValue(t, p.metrics.keyVersion); got != 2 {
			t.Errorf("key version gauge = %v, want 2", got)
		}
	})
}

func TestDecryptRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFakeCoffer(t)
	p, _, _ := newTestPlugin(t, f, func(c *Config) { c.CacheSize = -1 })
	good, err := p.Encrypt(ctx, "", randomDEK(t))
	if err != nil {
		t.Fatal(err)
	}
	kek := string(good.Annotations[AnnotationKEK])
	base := f.count("transit/decrypt/kube") // Encrypt's health round trip
	local := func(kv ...string) map[string][]byte {
		m := map[string][]byte{AnnotationFormat: []byte(FormatLocalKEK)}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = []byte(kv[i+1])
		}
		return m
	}
	// ct is a FormatV1 ciphertext (a transit ciphertext of the seed).
	ct := f.encryptDirect(randomDEK(t))
	junk := randomDEK(t)
	flipped := bytes.Clone(good.Ciphertext)
	flipped[len(flipped)-1] ^= 1

	// Refused by the plugin itself, without asking coffer.
	refused := []struct {
		name  string
		ct    string
		keyID string
		ann   map[string][]byte
	}{
		{"empty ciphertext", "", good.KeyID, nil},
		{"truncated", ct[:len(ct)-7], good.KeyID, nil},
		{"prefix only", "vault:v1:", good.KeyID, nil},
		{"foreign bytes", string(junk), good.KeyID, nil},
		{"another plugin's envelope", "k8s:enc:kms:v2:other:" + string(junk), good.KeyID, nil},
		{"bad base64", "vault:v1:" + strings.Repeat("%", 80), good.KeyID, nil},
		{"over 1 KiB", "vault:v1:" + strings.Repeat("AAAA", 300), good.KeyID, nil},
		{"empty key id", ct, "", nil},
		{"another key", ct, "transit/other:v1", nil},
		{"another mount", ct, "transit2/kube:v1", nil},
		{"another plugin's key id", ct, "key-1", nil},
		{"key id of another version", ct, "transit/kube:v2", nil},
		{"newer format", ct, good.KeyID, map[string][]byte{AnnotationFormat: []byte("transit-v9")}},
		{"local: no KEK annotation", string(good.Ciphertext), good.KeyID, local()},
		{"local: KEK annotation not a transit ciphertext", string(good.Ciphertext), good.KeyID, local(AnnotationKEK, "junk")},
		{"local: KEK annotation truncated", string(good.Ciphertext), good.KeyID, local(AnnotationKEK, kek[:len(kek)-5])},
		{"local: key id of another version than the KEK", string(good.Ciphertext), "transit/kube:v2", local(AnnotationKEK, kek)},
		{"local: key id of another key", string(good.Ciphertext), "transit/other:v1", local(AnnotationKEK, kek)},
		{"local: empty ciphertext", "", good.KeyID, local(AnnotationKEK, kek)},
		{"local: truncated ciphertext", string(good.Ciphertext[:nonceSize+tagSize]), good.KeyID, local(AnnotationKEK, kek)},
		{"local: over the limit", string(make([]byte, nonceSize+tagSize+maxPlaintext+1)), good.KeyID, local(AnnotationKEK, kek)},
		{"local: tampered ciphertext", string(flipped), good.KeyID, local(AnnotationKEK, kek)},
		{"local: foreign bytes", strings.Repeat("x", 60), good.KeyID, local(AnnotationKEK, kek)},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Decrypt(ctx, "", &service.DecryptRequest{Ciphertext: []byte(tt.ct), KeyID: tt.keyID, Annotations: tt.ann})
			wantCode(t, err, codes.InvalidArgument)
		})
	}
	if n := f.count("transit/decrypt/kube") - base; n != 0 {
		t.Errorf("coffer saw %d decrypt calls for inputs the plugin should refuse", n)
	}
	if _, err := p.Decrypt(ctx, "", nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("nil request: %v", err)
	}
	// A format of a later plugin says so, whatever the ciphertext.
	_, err = p.Decrypt(ctx, "", &service.DecryptRequest{Ciphertext: good.Ciphertext, KeyID: good.KeyID,
		Annotations: map[string][]byte{AnnotationFormat: []byte("local-kek-v2")}})
	if err == nil || !strings.Contains(err.Error(), "upgrade the plugin") {
		t.Errorf("a later format: %v, want a hint to upgrade", err)
	}

	// Well formed, refused by coffer: a clear InvalidArgument too.
	tamper := func(ct string) string {
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "vault:v1:"))
		raw[len(raw)-1] ^= 1
		return "vault:v1:" + base64.StdEncoding.EncodeToString(raw)
	}
	tampered := tamper(ct)
	for name, req := range map[string]*service.DecryptRequest{
		"tampered":            {Ciphertext: []byte(tampered), KeyID: good.KeyID},
		"unknown version":     {Ciphertext: []byte(strings.Replace(ct, "vault:v1:", "vault:v9:", 1)), KeyID: "transit/kube:v9"},
		"unknown extra ann":   {Ciphertext: []byte(tampered), KeyID: good.KeyID, Annotations: map[string][]byte{"x.example.com": nil}},
		"local: tampered KEK": {Ciphertext: good.Ciphertext, KeyID: good.KeyID, Annotations: local(AnnotationKEK, tamper(kek))},
		"local: KEK of an unknown version": {Ciphertext: good.Ciphertext, KeyID: "transit/kube:v9",
			Annotations: local(AnnotationKEK, strings.Replace(kek, "vault:v1:", "vault:v9:", 1))},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Decrypt(ctx, "", req)
			wantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(err.Error(), "coffer decrypt") {
				t.Errorf("error %q does not say coffer refused it", err)
			}
		})
	}

	// A transit ciphertext of something else than a KEK, and a seed
	// sealed under another KEK than its annotation names: coffer opens
	// the annotation, the plugin refuses the rest.
	other, err := p.Encrypt(ctx, "", randomDEK(t))
	if err != nil {
		t.Fatal(err)
	}
	p.kek.cur.Store(nil) // a new KEK for the next seed
	second, err := p.Encrypt(ctx, "", randomDEK(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]*service.DecryptRequest{
		"local: KEK annotation of another size": {Ciphertext: good.Ciphertext, KeyID: good.KeyID,
			Annotations: local(AnnotationKEK, f.encryptDirect([]byte("sixteen byte key")))},
		"local: sealed under another KEK": {Ciphertext: second.Ciphertext, KeyID: good.KeyID, Annotations: other.Annotations},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Decrypt(ctx, "", req)
			wantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(err.Error(), AnnotationKEK) {
				t.Errorf("error %q does not name the KEK annotation", err)
			}
		})
	}
}

func TestEncryptRefusesBadInput(t *testing.T) {
	t.Parallel()
	f := newFakeCoffer(t)
	p, _, _ := newTestPlugin(t, f, nil)
	for name, pt := range map[string][]byte{"empty": nil, "over the limit": make([]byte, maxPlaintext+1)} {
		_, err := p.Encrypt(t.Context(), "", pt)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: err = %v, want InvalidArgument", name, err)
		}
	}
	if n := f.count("transit/encrypt/kube"); n != 0 {
		t.Errorf("coffer saw %d encrypt calls", n)
	}
}

// TestOutage: with coffer sealed or unreachable, recently used data keys
// still decrypt, everything else fails with Unavailable, and Status says
// what is wrong; once coffer is back Status is ok again.
func TestOutage(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, tr, logs := newTestPlugin(t, f, nil)
		dek := randomDEK(t)
		enc, err := p.Encrypt(ctx, "", dek)
		if err != nil {
			t.Fatal(err)
		}
		cached := &service.DecryptRequest{Ciphertext: enc.Ciphertext, KeyID: enc.KeyID, Annotations: enc.Annotations}
		// A seed under a KEK this plugin has not seen (another plugin's),
		// and a FormatV1 seed it has not seen.
		p2, _, _ := newTestPlugin(t, f, nil)
		enc2, err := p2.Encrypt(ctx, "", randomDEK(t))
		if err != nil {
			t.Fatal(err)
		}
		unseen := []*service.DecryptRequest{
			{Ciphertext: enc2.Ciphertext, KeyID: enc2.KeyID, Annotations: enc2.Annotations},
			{Ciphertext: []byte(f.encryptDirect(randomDEK(t))), KeyID: enc.KeyID},
		}
		if st, _ := p.Status(ctx); st.Healthz != "ok" {
			t.Fatalf("Status before the outage: %+v", st)
		}

		for _, outage := range []struct {
			name        string
			start, stop func()
			healthz     string
		}{
			{"sealed", func() { f.set(func(f *fakeCoffer) { f.sealed = true }) },
				func() { f.set(func(f *fakeCoffer) { f.sealed = false }) }, "coffer is sealed"},
			{"unreachable", func() { tr.down.Store(true) }, func() { tr.down.Store(false) }, "coffer did not answer"},
		} {
			outage.start()
			time.Sleep(DefaultHealthTTL)
			st, err := p.Status(ctx)
			if err != nil || !strings.Contains(st.Healthz, outage.healthz) || st.KeyID != "transit/kube:v1" {
				t.Errorf("%s: Status = %+v, %v; want healthz with %q and the last key id", outage.name, st, err, outage.healthz)
			}
			if strings.Contains(st.Healthz, "\n") {
				t.Errorf("%s: healthz has a newline: %q", outage.name, st.Healthz)
			}
			if got, err := p.Decrypt(ctx, "", cached); err != nil || !bytes.Equal(got, dek) {
				t.Errorf("%s: Decrypt of a cached data key = %x, %v", outage.name, got, err)
			}
			for _, req := range unseen {
				_, err = p.Decrypt(ctx, "", req)
				wantCode(t, err, codes.Unavailable)
			}
			// The KEK in memory could encrypt, but while Status says
			// coffer is unhealthy no new seed is encrypted.
			_, err = p.Encrypt(ctx, "", randomDEK(t))
			wantCode(t, err, codes.Unavailable)
			if !strings.Contains(err.Error(), outage.healthz) {
				t.Errorf("%s: Encrypt error %q does not say why", outage.name, err)
			}
			outage.stop()
			time.Sleep(unhealthyTTL)
			if st, _ := p.Status(ctx); st.Healthz != "ok" {
				t.Errorf("%s: Status after the outage = %+v", outage.name, st)
			}
			if _, err := p.Encrypt(ctx, "", randomDEK(t)); err != nil {
				t.Errorf("%s: Encrypt after the outage: %v", outage.name, err)
			}
		}
		if n := metricValue(t, p.metrics.cofferErrors.WithLabelValues("encrypt", "sealed")); n < 1 {
			t.Errorf("coffer errors (encrypt, sealed) = %v", n)
		}
		noKeyMaterial(t, logs.String(), dek)
	})
}

// TestKEKUnwrapShared: Decrypts that need the same unseen KEK at once (a
// restarted plugin's first burst, every seed under one KEK) have coffer
// unwrap it once; each caller gets its own seed.
func TestKEKUnwrapShared(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, nil)
		const n = 16
		deks, reqs := make([][]byte, n), make([]*service.DecryptRequest, n)
		for i := range n {
			deks[i] = randomDEK(t)
			r, err := p.Encrypt(ctx, "", deks[i])
			if err != nil {
				t.Fatal(err)
			}
			reqs[i] = &service.DecryptRequest{Ciphertext: r.Ciphertext, KeyID: r.KeyID, Annotations: r.Annotations}
		}
		fresh, _, _ := newTestPlugin(t, f, nil)
		before := len(f.transitSizes())
		gate := gated(f)
		got, errs := make([][]byte, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { got[i], errs[i] = fresh.Decrypt(ctx, "", reqs[i]) })
		}
		synctest.Wait() // one caller waits for coffer, the others for it
		close(gate)
		wg.Wait()
		for i := range n {
			if errs[i] != nil || !bytes.Equal(got[i], deks[i]) {
				t.Fatalf("Decrypt %d = %x, %v; want %x", i, got[i], errs[i], deks[i])
			}
		}
		if sizes := f.transitSizes()[before:]; len(sizes) != 1 || sizes[0] > 1 {
			t.Fatalf("coffer calls (batch sizes, 0: one ciphertext) = %v, want one call for the KEK", sizes)
		}

		// The caller whose call it is gives up (its deadline): one that
		// waited with time left asks coffer itself, not failing with it.
		fresh, _, _ = newTestPlugin(t, f, nil)
		gate = gated(f)
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		shortErr := make(chan error, 1)
		go func() {
			_, err := fresh.Decrypt(short, "", reqs[0])
			shortErr <- err
		}()
		synctest.Wait()
		var long []byte
		var longErr error
		wg.Go(func() { long, longErr = fresh.Decrypt(ctx, "", reqs[1]) })
		if err := <-shortErr; status.Code(err) != codes.Unavailable {
			t.Fatalf("Decrypt past its deadline = %v, want Unavailable", err)
		}
		synctest.Wait() // the second caller now waits for coffer itself
		close(gate)
		wg.Wait()
		if longErr != nil || !bytes.Equal(long, deks[1]) {
			t.Fatalf("Decrypt of a caller that waited = %x, %v; want %x", long, longErr, deks[1])
		}
	})
}

// TestHealthWaitWatchesContext: a caller that finds a health round trip
// under way waits for it only as long as its own context lives, and is
// then refused as unavailable; the round trip goes on and its result
// answers the next caller.
func TestHealthWaitWatchesContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, nil)
		gate := gated(f)
		statusc := make(chan *service.StatusResponse, 1)
		go func() {
			st, _ := p.Status(ctx)
			statusc <- st
		}()
		synctest.Wait() // the round trip waits for coffer
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.Encrypt(short, "", randomDEK(t))
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "waiting for a round trip under way") {
			t.Fatalf("Encrypt while a round trip is under way = %v, want Unavailable after its deadline", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("Encrypt waited %v, want its own deadline (100ms)", d)
		}
		close(gate)
		if st := <-statusc; st.Healthz != "ok" {
			t.Fatalf("Status = %+v", st)
		}
		if _, err := p.Encrypt(ctx, "", randomDEK(t)); err != nil {
			t.Fatalf("Encrypt after the round trip: %v", err)
		}
	})
}

// TestKEKRenewal: a KEK encrypts until its lifetime or its use count is
// spent, then the next Encrypt makes a new one; seeds under the old one
// still open. Concurrent callers that find no usable KEK share one call
// to coffer.
// TestHealthOutlivesCaller: the caller that starts a health round trip
// and then gives up (the apiserver's deadline, or its request cancelled)
// returns at once, but the round trip goes on to its own end and its
// result is what Status reports; a cancellation is never remembered as
// coffer being unhealthy.
func TestHealthOutlivesCaller(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"cancelled", "deadline"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				f := newFakeCoffer(t)
				p, _, _ := newTestPlugin(t, f, nil)
				gate := gated(f)
				caller, cancel := context.WithCancel(ctx)
				if name == "deadline" {
					caller, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
				}
				defer cancel()
				errc := make(chan error, 1)
				go func() { _, err := p.Encrypt(caller, "", randomDEK(t)); errc <- err }()
				synctest.Wait() // its round trip waits for coffer
				start := time.Now()
				if name == "cancelled" {
					cancel()
				}
				if err := <-errc; status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "waiting for the round trip it started") {
					t.Fatalf("Encrypt of a caller that gave up = %v", err)
				}
				if d := time.Since(start); name == "deadline" && d != 100*time.Millisecond {
					t.Fatalf("Encrypt returned after %v, want its deadline", d)
				}
				close(gate) // coffer answers the round trip
				synctest.Wait()
				if st, err := p.Status(ctx); err != nil || st.Healthz != "ok" {
					t.Fatalf("Status after the round trip = %+v, %v; want ok", st, err)
				}
				if got := f.count("transit/encrypt/" + f.key); got != 1 {
					t.Errorf("transit encrypt calls = %d, want the one round trip (Status used its result)", got)
				}
				if _, err := p.Encrypt(ctx, "", randomDEK(t)); err != nil {
					t.Fatalf("Encrypt after the round trip: %v", err)
				}
			})
		})
	}
}

// TestKEKOutlivesCaller: the Encrypt that starts making a KEK gives up;
// another Encrypt waiting for the same KEK gets it all the same.
func TestKEKOutlivesCaller(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, nil)
		if st, err := p.Status(ctx); err != nil || st.Healthz != "ok" {
			t.Fatalf("status: %+v %v", st, err)
		}
		gate := gated(f)
		first, cancel := context.WithCancel(ctx)
		errc := make(chan error, 2)
		go func() { _, err := p.Encrypt(first, "", randomDEK(t)); errc <- err }()
		synctest.Wait() // making the KEK waits for coffer
		go func() { _, err := p.Encrypt(ctx, "", randomDEK(t)); errc <- err }()
		synctest.Wait()
		cancel()
		if err := <-errc; status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "waiting for a new key encryption key") {
			t.Fatalf("Encrypt that gave up = %v", err)
		}
		close(gate)
		if err := <-errc; err != nil {
			t.Fatalf("Encrypt waiting for the same KEK: %v", err)
		}
		if got := f.count("transit/encrypt/" + f.key); got != 2 {
			t.Errorf("transit encrypt calls = %d, want 2 (the health round trip and one KEK)", got)
		}
	})
}

func TestKEKRenewal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, func(c *Config) { c.KEKLifetime, c.CacheTTL = time.Hour, 24*time.Hour })
		// A fresh health check first: the callers below then wait only
		// for the KEK.
		if st, _ := p.Status(ctx); st.Healthz != "ok" {
			t.Fatalf("Status = %+v", st)
		}
		before := f.count("transit/encrypt/kube")
		gate := gated(f)
		const n = 8
		encs := make([]*service.EncryptResponse, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { encs[i], errs[i] = p.Encrypt(ctx, "", randomDEK(t)) })
		}
		synctest.Wait()
		close(gate)
		wg.Wait()
		for i := range n {
			if errs[i] != nil || !bytes.Equal(encs[i].Annotations[AnnotationKEK], encs[0].Annotations[AnnotationKEK]) {
				t.Fatalf("Encrypt %d = %+v, %v; want the first caller's KEK", i, encs[i], errs[i])
			}
		}
		kek := func() string {
			enc, err := p.Encrypt(ctx, "", randomDEK(t))
			if err != nil {
				t.Fatal(err)
			}
			return string(enc.Annotations[AnnotationKEK])
		}
		first := string(encs[0].Annotations[AnnotationKEK])
		if got := f.count("transit/encrypt/kube") - before; got != 1 {
			t.Errorf("coffer encrypt calls for %d concurrent first seeds = %d, want 1", n, got)
		}
		time.Sleep(time.Hour - time.Second)
		if kek() != first {
			t.Error("the KEK changed within its lifetime")
		}
		time.Sleep(time.Second)
		second := kek()
		if second == first {
			t.Error("the KEK outlived its lifetime")
		}
		p.kek.cur.Load().uses.Store(kekMaxUses)
		if kek() == second {
			t.Errorf("the KEK encrypted more than %d seeds", kekMaxUses)
		}
		if got := metricValue(t, p.metrics.keks); got != 3 {
			t.Errorf("KEKs created = %v, want 3", got)
		}
		dek := randomDEK(t)
		enc, err := p.Encrypt(ctx, "", dek)
		if err != nil {
			t.Fatal(err)
		}
		old := encs[0]
		before = f.count("transit/decrypt/kube")
		for _, req := range []*service.DecryptRequest{
			{Ciphertext: enc.Ciphertext, KeyID: enc.KeyID, Annotations: enc.Annotations},
			{Ciphertext: old.Ciphertext, KeyID: old.KeyID, Annotations: old.Annotations},
		} {
			if _, err := p.Decrypt(ctx, "", req); err != nil {
				t.Errorf("Decrypt: %v", err)
			}
		}
		if got := f.count("transit/decrypt/kube") - before; got != 0 {
			t.Errorf("coffer decrypt calls = %d, want 0: the plugin's own KEKs are cached", got)
		}
	})
}

// TestTimeout: a coffer that does not answer costs at most Timeout per
// call, well inside the apiserver's own 3s.
func TestTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, func(c *Config) { c.Timeout = 1500 * time.Millisecond })
		f.set(func(f *fakeCoffer) { f.hang = true })
		start := time.Now()
		_, err := p.Encrypt(ctx, "", randomDEK(t))
		wantCode(t, err, codes.Unavailable)
		if d := time.Since(start); d != 1500*time.Millisecond {
			t.Errorf("Encrypt returned after %v, want the 1.5s timeout", d)
		}
		time.Sleep(unhealthyTTL) // the failure Encrypt saw is remembered this long
		start = time.Now()
		st, _ := p.Status(ctx)
		if d := time.Since(start); d != 1500*time.Millisecond || !strings.Contains(st.Healthz, "deadline exceeded") {
			t.Errorf("Status after %v: %+v", d, st)
		}
	})
	// Healthy, but the transit call that makes the first KEK hangs: the
	// Encrypt that makes it and one waiting for it return at the timeout.
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		f := newFakeCoffer(t)
		p, _, _ := newTestPlugin(t, f, func(c *Config) { c.Timeout = 1500 * time.Millisecond })
		if st, err := p.Status(ctx); err != nil || st.Healthz != "ok" {
			t.Fatalf("status: %+v %v", st, err)
		}
		f.set(func(f *fakeCoffer) { f.hang = true })
		start := time.Now()
		errc := make(chan error, 2)
		for range 2 {
			go func() { _, err := p.Encrypt(ctx, "", randomDEK(t)); errc <- err }()
		}
		for range 2 {
			if err := <-errc; status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("Encrypt while making a KEK hangs: %v", err)
			}
		}
		if d := time.Since(start); d != 1500*time.Millisecond {
			t.Errorf("Encrypt returned after %v, want the 1.5s timeout", d)
		}
	})
}

func TestStatusMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(f *fakeCoffer, p *Plugin)
		want  string
	}{
		{"no token yet", func(f *fakeCoffer, p *Plugin) { p.tokens.cur.Store(nil) }, "no coffer token yet"},
		{"token revoked", func(f *fakeCoffer, p *Plugin) { f.set(func(f *fakeCoffer) { clear(f.tokens) }) }, "permission denied"},
		{"key missing", func(f *fakeCoffer, p *Plugin) { f.set(func(f *fakeCoffer) { f.key = "gone" }) }, "encryption key not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCoffer(t)
			p, _, _ := newTestPlugin(t, f, nil)
			tt.setup(f, p)
			st, err := p.Status(t.Context())
			if err != nil || !strings.Contains(st.Healthz, tt.want) {
				t.Errorf("Status = %+v, %v; want healthz with %q", st, err, tt.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Key: "a/b", Timeout: -1})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"no coffer client", "no authentication", "transit key name \"a/b\"", "timeout -1ns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("metric %v is not a counter or gauge", m.Desc())
	return 0
}

// FuzzDecryptLocal feeds arbitrary local-KEK Decrypt requests (ciphertext,
// key id, wrapped KEK) to a plugin whose coffer is the fake: Decrypt never
// panics, refuses with InvalidArgument what it cannot open, and opens
// nothing but the genuine ciphertext (to its seed).
func FuzzDecryptLocal(f *testing.F) {
	fc := newFakeCoffer(f)
	c, _ := fakeClient(f, fc)
	tok := fc.addToken(0, false)
	p, err := New(Config{Client: c, Auth: staticAuth{tok}, Key: fc.key, CacheSize: 4})
	if err != nil {
		f.Fatal(err)
	}
	p.tokens.cur.Store(c.WithToken(tok))
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	good, err := p.Encrypt(f.Context(), "", seed)
	if err != nil {
		f.Fatal(err)
	}
	kek := good.Annotations[AnnotationKEK]
	f.Add(good.Ciphertext, good.KeyID, kek)
	f.Add(good.Ciphertext[:20], good.KeyID, kek)
	f.Add(good.Ciphertext, "transit/kube:v2", kek)
	f.Add(good.Ciphertext, good.KeyID, []byte("vault:v1:AAAA"))
	f.Add(good.Ciphertext, good.KeyID, []byte(fc.encryptDirect(make([]byte, 32))))
	f.Fuzz(func(t *testing.T, ct []byte, keyID string, wrapped []byte) {
		req := &service.DecryptRequest{Ciphertext: ct, KeyID: keyID,
			Annotations: map[string][]byte{AnnotationFormat: []byte(FormatLocalKEK), AnnotationKEK: wrapped}}
		pt, err := p.Decrypt(t.Context(), "", req)
		if err != nil {
			if c := status.Code(err); c != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			return
		}
		if !bytes.Equal(ct, good.Ciphertext) || !bytes.Equal(wrapped, kek) || !bytes.Equal(pt, seed) {
			t.Fatalf("opened a forged request: ct %x, kek %q -> %x", ct, wrapped, pt)
		}
	})
}
