package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	testHMACKey = bytes.Repeat([]byte{0x42}, 32)
	testSignKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	testPub     = testSignKey.Public().(ed25519.PublicKey)
	otherKey    = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
)

// fakeClock gives increasing times one millisecond apart.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// newBroker returns a broker closed when the test ends.
func newBroker(t testing.TB, opts BrokerOptions) *Broker {
	t.Helper()
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	b := NewBroker(opts)
	t.Cleanup(func() { b.Close() })
	return b
}

// newFileDevice creates a file device at dir/name with extra options.
func newFileDevice(t testing.TB, path string, kv ...string) Device {
	t.Helper()
	opts := map[string]string{"file_path": path}
	for i := 0; i+1 < len(kv); i += 2 {
		opts[kv[i]] = kv[i+1]
	}
	dev, err := NewDevice("file/", TypeFile, opts)
	if err != nil {
		t.Fatal(err)
	}
	return dev
}

func enable(t testing.TB, b *Broker, path string, dev Device) {
	t.Helper()
	if err := b.Enable(path, dev, testHMACKey, testSignKey); err != nil {
		dev.Close()
		t.Fatal(err)
	}
}

// kvRead is a typical request/response pair: a KV v2 read.
func kvRead(i int, password string) (req, resp *Entry) {
	auth := &Auth{
		TokenID: "id-" + password, ClientToken: "hvs.CAESIJ3x9k" + password, Accessor: "acc-" + password, DisplayName: "kubernetes-app",
		Policies: []string{"default", "app"}, TokenPolicies: []string{"default", "app"},
		Metadata: map[string]string{"role": "app", "service_account_name": "app"}, EntityID: "ent-1", TokenType: "service",
	}
	r := &Request{
		ID: "req-" + strings.Repeat("x", i%3), Operation: "read", MountType: "kv", MountAccessor: "kv_1234",
		Path: "secret/data/app/db", RemoteAddress: "10.0.0.7",
	}
	req = &Entry{Auth: auth, Request: r}
	resp = &Entry{Auth: auth, Request: r, Response: &Response{Data: map[string]any{
		"data": map[string]any{"username": "app", "password": password},
		"metadata": map[string]any{
			"created_time": "2025-01-01T00:00:00Z", "version": 3, "destroyed": false, "custom_metadata": nil,
		},
	}}}
	return req, resp
}

// writeLog writes n request/response pairs to a new file device at path
// through a broker that checkpoints every `every` records, and closes it
// (so the log ends in a checkpoint).
func writeLog(t testing.TB, path string, n, every int) {
	t.Helper()
	b := NewBroker(BrokerOptions{Now: newClock().Now, CheckpointEvery: every, CheckpointInterval: time.Hour})
	enable(t, b, "file/", newFileDevice(t, path))
	ctx := context.Background()
	for i := range n {
		req, resp := kvRead(i, "pw")
		if err := b.LogRequest(ctx, req); err != nil {
			t.Fatal(err)
		}
		if err := b.LogResponse(ctx, resp); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte{'\n'})
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func verifyFiles(t testing.TB, pub ed25519.PublicKey, head *Head, files ...string) *Report {
	t.Helper()
	rep, err := Verify(files, pub, head)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// mustVerify fails the test unless the files verify.
func mustVerify(t testing.TB, files ...string) *Report {
	t.Helper()
	rep := verifyFiles(t, testPub, nil, files...)
	if !rep.OK {
		t.Fatalf("verify: %v", rep.Problem)
	}
	return rep
}

func tempLog(t testing.TB) string {
	return filepath.Join(t.TempDir(), "audit.log")
}
