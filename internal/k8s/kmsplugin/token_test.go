package kmsplugin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// runTokens starts m in the bubble and returns a stop function that ends
// it and waits for it.
func runTokens(t *testing.T, m *tokenManager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	synctest.Wait()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("token manager: %v", err)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func loginManager(t *testing.T, f *fakeCoffer, jwt string) (*tokenManager, *handlerTransport, *metrics) {
	t.Helper()
	jwtFile := filepath.Join(t.TempDir(), "jwt")
	writeFile(t, jwtFile, jwt+"\n")
	c, tr := fakeClient(t, f)
	m := newMetrics(func() int { return 0 })
	auth := Login{Method: "kubernetes", Mount: "kubernetes", Role: "kms-plugin", JWTFile: jwtFile}
	return newTokenManager(c, auth, 2*time.Second, 0, (&logBuffer{}).logger(), m), tr, m
}

// valid reports whether the manager's current token works.
func valid(m *tokenManager) bool {
	c := m.client()
	if c == nil {
		return false
	}
	_, err := c.Auth().LookupSelf(context.Background())
	return err == nil
}

func TestTokenLoginAndRenew(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCoffer(t) // logins get 60s renewable tokens
		m, _, met := loginManager(t, f, "good-jwt")
		stop := runTokens(t, m)
		defer stop()
		if f.count("auth/kubernetes/login") != 1 || !valid(m) {
			t.Fatalf("no token after start: %v", m.err())
		}
		first := m.client().Token()
		// Renewals every 40s keep the one token alive far past its TTL.
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if !valid(m) || m.client().Token() != first {
			t.Fatal("token not kept alive by renewal")
		}
		if n := f.count("auth/token/renew-self"); n < 14 || n > 16 {
			t.Errorf("renewals in 10 min = %d, want about 15 (every 40s)", n)
		}
		if n := f.count("auth/kubernetes/login"); n != 1 {
			t.Errorf("logins = %d, want 1", n)
		}
		if got := metricValue(t, met.tokenEvents.WithLabelValues("renew", "ok")); got < 14 {
			t.Errorf("renew metric = %v", got)
		}
	})
}

// TestTokenMaxTTL: renewals that shrink towards the token's max TTL lead
// to a new login before the old token expires.
func TestTokenMaxTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCoffer(t)
		f.set(func(f *fakeCoffer) { f.maxTTL = 90 * time.Second })
		m, _, _ := loginManager(t, f, "good-jwt")
		stop := runTokens(t, m)
		defer stop()
		for range 10 { // 5 minutes: beyond three max TTLs
			time.Sleep(30 * time.Second)
			synctest.Wait()
			if !valid(m) {
				t.Fatalf("no valid token at %v", time.Now())
			}
		}
		if n := f.count("auth/kubernetes/login"); n < 4 {
			t.Errorf("logins in 5 min with a 90s max TTL = %d, want at least 4", n)
		}
	})
}

func TestTokenReloginWhenRenewalFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCoffer(t)
		f.set(func(f *fakeCoffer) { f.denyRenew = true })
		m, _, _ := loginManager(t, f, "good-jwt")
		stop := runTokens(t, m)
		defer stop()
		first := m.client().Token()
		time.Sleep(41 * time.Second)
		synctest.Wait()
		if f.count("auth/token/renew-self") != 1 || f.count("auth/kubernetes/login") != 2 {
			t.Errorf("renewals %d, logins %d; want 1 failed renewal and a second login",
				f.count("auth/token/renew-self"), f.count("auth/kubernetes/login"))
		}
		if !valid(m) || m.client().Token() == first {
			t.Error("no new token after the failed renewal")
		}
	})
}

// TestTokenDenied: a token revoked behind the plugin's back is replaced
// as soon as a call is refused (at most every minReobtain).
func TestTokenDenied(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCoffer(t)
		m, _, _ := loginManager(t, f, "good-jwt")
		stop := runTokens(t, m)
		defer stop()
		f.revoke(m.client().Token())
		m.denied()
		synctest.Wait()
		if f.count("auth/kubernetes/login") != 1 {
			t.Error("re-obtained within minReobtain of the last login")
		}
		time.Sleep(minReobtain)
		m.denied()
		synctest.Wait()
		if !valid(m) || f.count("auth/kubernetes/login") != 2 {
			t.Errorf("after a refused call: valid=%v logins=%d", valid(m), f.count("auth/kubernetes/login"))
		}
	})
}

func TestTokenBadLogin(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCoffer(t)
		m, _, _ := loginManager(t, f, "bad-jwt")
		stop := runTokens(t, m)
		defer stop()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if m.client() != nil {
			t.Fatal("a token from a refused login")
		}
		err := m.err()
		if err == nil || !strings.Contains(err.Error(), "kubernetes login at auth/kubernetes as role \"kms-plugin\"") ||
			!strings.Contains(err.Error(), "permission denied") {
			t.Errorf("err = %v", err)
		}
		// Retries back off: at 0, 1, 3, 7 and 15s.
		if n := f.count("auth/kubernetes/login"); n != 5 {
			t.Errorf("logins in 20s = %d, want 5", n)
		}
	})
}

func TestTokenFile(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCoffer(t)
		c, tr := fakeClient(t, f)
		path := filepath.Join(t.TempDir(), "token")
		tok1, tok2 := f.addToken(0, false), f.addToken(90*time.Second, true)
		writeFile(t, path, tok1+"\n")

		// Coffer is down at start: the token is used at once and looked
		// up once coffer answers.
		tr.down.Store(true)
		m := newTokenManager(c, TokenFile{Path: path}, 2*time.Second, 0, (&logBuffer{}).logger(), nil)
		stop := runTokens(t, m)
		defer stop()
		if m.client() == nil || m.client().Token() != tok1 || m.err() == nil {
			t.Fatalf("with coffer down: client %v, err %v", m.client(), m.err())
		}
		tr.down.Store(false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if m.err() != nil || !valid(m) {
			t.Fatalf("after coffer came back: err %v", m.err())
		}

		// A new token in the file replaces the old within a poll.
		writeFile(t, path, tok2)
		time.Sleep(defaultPoll)
		synctest.Wait()
		if m.client().Token() != tok2 {
			t.Fatal("the new token in the file was not picked up")
		}
		// It has a TTL and is renewable: renewed, so it outlives 90s.
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if !valid(m) || f.count("auth/token/renew-self") == 0 {
			t.Errorf("file token not renewed: valid=%v renewals=%d", valid(m), f.count("auth/token/renew-self"))
		}
	})
}

func TestAuthCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, " \n")
	tests := []struct {
		name string
		auth Auth
		want string
	}{
		{"missing token file", TokenFile{Path: filepath.Join(dir, "nope")}, "no such file"},
		{"empty token file", TokenFile{Path: empty}, "is empty"},
		{"no token file", TokenFile{}, "no token file given"},
		{"login without role", Login{JWTFile: empty}, "needs a role"},
		{"login with empty JWT", Login{Role: "r", JWTFile: empty}, "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.auth.check(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}
