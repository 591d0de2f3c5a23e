package compat

import (
	"testing"

	bao "github.com/openbao/openbao/api/v2"

	"github.com/cofferhq/coffer/internal/servertest"
)

func baoClient(t *testing.T, addr, token string) *bao.Client {
	t.Helper()
	cfg := bao.DefaultConfig()
	cfg.Address = addr
	c, err := bao.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// TestOpenBaoLifecycle drives init, unseal (hex and base64 shares),
// seal-status, health, seal and mounts with OpenBao's Go client against a
// real coffer process on bbolt storage.
func TestOpenBaoLifecycle(t *testing.T) {
	p := servertest.Start(t, servertest.Options{})
	c := baoClient(t, p.Addr, "")
	sys := c.Sys()
	ctx := t.Context()

	if ok, err := sys.InitStatusWithContext(ctx); err != nil || ok {
		t.Fatalf("InitStatus = %v, %v; want false", ok, err)
	}
	st, err := sys.SealStatusWithContext(ctx)
	if err != nil || st.Initialized || !st.Sealed {
		t.Fatalf("seal status before init = %+v, %v", st, err)
	}
	h, err := sys.HealthWithContext(ctx)
	if err != nil || h.Initialized {
		t.Fatalf("health before init = %+v, %v", h, err)
	}

	res, err := sys.InitWithContext(ctx, &bao.InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if len(res.Keys) != 5 || len(res.KeysB64) != 5 || res.RootToken == "" {
		t.Fatalf("init response = %d keys, %d b64, token set %v", len(res.Keys), len(res.KeysB64), res.RootToken != "")
	}
	if len(res.Keys[0]) != 66 || len(res.KeysB64[0]) != 44 {
		t.Errorf("share sizes: hex %d (want 66), base64 %d (want 44)", len(res.Keys[0]), len(res.KeysB64[0]))
	}
	if _, err := sys.InitWithContext(ctx, &bao.InitRequest{SecretShares: 5, SecretThreshold: 3}); err == nil {
		t.Error("second init succeeded")
	}

	// Hex shares: 1 and 2 give progress; 3 unseals.
	for i, k := range res.Keys[:3] {
		st, err := sys.UnsealWithContext(ctx, k)
		if err != nil {
			t.Fatalf("unseal %d: %v", i, err)
		}
		if i < 2 && (!st.Sealed || st.Progress != i+1 || st.Nonce == "") {
			t.Fatalf("after share %d: %+v", i+1, st)
		}
		if i == 2 && (st.Sealed || st.Progress != 0) {
			t.Fatalf("after share 3: %+v", st)
		}
	}
	h, err = sys.HealthWithContext(ctx)
	if err != nil || !h.Initialized || h.Sealed || h.Standby || h.ClusterID == "" {
		t.Fatalf("health unsealed = %+v, %v", h, err)
	}

	c.SetToken(res.RootToken)
	if err := sys.MountWithContext(ctx, "secret", &bao.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	mounts, err := sys.ListMountsWithContext(ctx)
	if err != nil {
		t.Fatalf("list mounts: %v", err)
	}
	for _, want := range []string{"secret/", "sys/", "cubbyhole/"} {
		if mounts[want] == nil {
			t.Errorf("mount %s missing from %v", want, mounts)
		}
	}
	if m := mounts["secret/"]; m != nil && (m.Type != "kv" || m.Options["version"] != "2" || m.Accessor == "") {
		t.Errorf("secret/ = %+v", m)
	}
	if _, err := c.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "hunter2"}); err != nil {
		t.Fatalf("kv put: %v", err)
	}

	if err := sys.SealWithContext(ctx); err != nil {
		t.Fatalf("seal: %v", err)
	}
	h, _ = sys.HealthWithContext(ctx)
	if h == nil || !h.Sealed {
		t.Fatalf("health after seal = %+v", h)
	}
	if _, err := c.KVv2("secret").Get(ctx, "app/db"); err == nil {
		t.Fatal("read while sealed succeeded")
	}

	// Restart, then unseal with base64 shares 3, 4, 5.
	p.Restart(false)
	c = baoClient(t, p.Addr, res.RootToken)
	sys = c.Sys()
	for _, k := range res.KeysB64[2:] {
		if st, err = sys.UnsealWithContext(ctx, k); err != nil {
			t.Fatalf("unseal b64: %v", err)
		}
	}
	if st.Sealed {
		t.Fatalf("still sealed after base64 shares: %+v", st)
	}
	s, err := c.KVv2("secret").Get(ctx, "app/db")
	if err != nil || s.Data["password"] != "hunter2" {
		t.Fatalf("kv after restart = %v, %v", s, err)
	}

	// Reset discards progress.
	if err := sys.SealWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err = sys.UnsealWithContext(ctx, res.Keys[0]); err != nil || st.Progress != 1 {
		t.Fatalf("progress = %+v, %v", st, err)
	}
	if st, err = sys.ResetUnsealProcessWithContext(ctx); err != nil || st.Progress != 0 {
		t.Fatalf("after reset = %+v, %v", st, err)
	}
}
