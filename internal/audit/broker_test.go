package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestFailClosed: a record fails only when no enabled device took it.
// /dev/full is a real device whose every write fails with ENOSPC.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	tests := []struct {
		name    string
		devices []string // "full" or "file"
		wantErr bool
	}{
		{name: "no devices"},
		{name: "one good", devices: []string{"file"}},
		{name: "disk full", devices: []string{"full"}, wantErr: true},
		{name: "both disks full", devices: []string{"full", "full"}, wantErr: true},
		{name: "one of two full", devices: []string{"full", "file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t, BrokerOptions{})
			var files []string
			for i, kind := range tc.devices {
				path := "/dev/full"
				if kind == "file" {
					path = tempLog(t)
					files = append(files, path)
				}
				enable(t, b, fmt.Sprintf("%s%d/", kind, i), newFileDevice(t, path))
			}
			req, _ := kvRead(0, "pw")
			err := b.LogRequest(t.Context(), req)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("LogRequest: %v", err)
				}
			} else if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("LogRequest = %v; want ErrFailed and ENOSPC", err)
			}
			for _, d := range b.List() {
				want := [2]uint64{1, 0}
				if strings.HasPrefix(d.Path, "full") {
					want = [2]uint64{0, 1}
				}
				if got := [2]uint64{d.Counters.Written(), d.Counters.Failed()}; got != want {
					t.Errorf("%s: written, failed = %v, want %v", d.Path, got, want)
				}
				if strings.HasPrefix(d.Path, "full") && d.Head.Seq != 0 {
					t.Errorf("%s: a failed write advanced the chain to %d", d.Path, d.Head.Seq)
				}
			}
			for _, f := range files {
				if n := len(readLines(t, f)); n != 1 {
					t.Errorf("%s has %d lines, want 1", f, n)
				}
			}
		})
	}
}

func TestBrokerClosed(t *testing.T) {
	t.Parallel()
	b := NewBroker(BrokerOptions{})
	if err := b.LogRequest(t.Context(), &Entry{}); err != nil {
		t.Fatalf("no devices: %v", err)
	}
	b.Close()
	if err := b.LogRequest(t.Context(), &Entry{}); !errors.Is(err, ErrFailed) || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	dev := newFileDevice(t, tempLog(t))
	defer dev.Close()
	if err := b.Enable("file/", dev, testHMACKey, testSignKey); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enable after Close: %v", err)
	}
}

func TestEnableErrors(t *testing.T) {
	t.Parallel()
	b := newBroker(t, BrokerOptions{})
	enable(t, b, "file/", newFileDevice(t, tempLog(t)))
	dev := newFileDevice(t, tempLog(t))
	defer dev.Close()
	tests := []struct {
		name string
		path string
		dev  Device
		hmac []byte
		sign ed25519.PrivateKey
		want error
	}{
		{"path in use", "file/", dev, testHMACKey, testSignKey, ErrPathInUse},
		{"empty path", "", dev, testHMACKey, testSignKey, ErrInvalidConfig},
		{"no device", "x/", nil, testHMACKey, testSignKey, ErrInvalidConfig},
		{"short HMAC key", "x/", dev, []byte("short"), testSignKey, ErrInvalidConfig},
		{"bad signing key", "x/", dev, testHMACKey, ed25519.PrivateKey("nope"), ErrInvalidConfig},
	}
	for _, tc := range tests {
		if err := b.Enable(tc.path, tc.dev, tc.hmac, tc.sign); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := b.Disable("nope/"); !errors.Is(err, ErrNotEnabled) {
		t.Errorf("Disable unknown: %v", err)
	}
}

// TestCheckpointsAndHead: checkpoints every N records, a last one on
// Disable, and a head that names the last line.
func TestCheckpointsAndHead(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	b := newBroker(t, BrokerOptions{CheckpointEvery: 3, CheckpointInterval: time.Hour})
	enable(t, b, "file/", newFileDevice(t, path))
	if seq, hash, ok := b.Head("file/"); !ok || seq != 0 || hash != Genesis {
		t.Fatalf("initial head = %d %s %v", seq, hash, ok)
	}
	for i := range 7 {
		if err := b.LogRequest(t.Context(), &Entry{Request: &Request{Path: fmt.Sprint("p", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, path)
	var types []string
	for _, l := range lines {
		rec, err := parseLine(bytes.TrimSuffix(l, []byte{'\n'}))
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, rec.Type[:2])
	}
	if got := strings.Join(types, " "); got != "re re re ch re re re ch re" {
		t.Fatalf("record types: %s", got)
	}
	seq, hash, _ := b.Head("file/")
	if seq != 9 || hash != lineHash(bytes.TrimSuffix(lines[8], []byte{'\n'})) {
		t.Fatalf("head = %d %s", seq, hash)
	}
	if got := b.List(); len(got) != 1 || got[0].Path != "file/" || got[0].Type != TypeFile ||
		!got[0].PublicKey.Equal(testPub) || got[0].KeyID != KeyID(testPub) || got[0].Head.Seq != 9 || got[0].Counters.Written() != 9 {
		t.Fatalf("List = %+v", got)
	}
	if h, ok := b.HashString("file/", "x"); !ok || h != HashString(testHMACKey, "x") {
		t.Fatalf("HashString = %s %v", h, ok)
	}
	if err := b.Disable("file/"); err != nil {
		t.Fatal(err)
	}
	if len(b.List()) != 0 {
		t.Fatal("still listed after Disable")
	}
	rep := verifyFiles(t, testPub, &Head{Seq: seq, Hash: hash}, path)
	if !rep.OK || rep.Last.Seq != 10 || rep.SignedThrough != 10 || !rep.HeadChecked {
		t.Fatalf("after Disable: %+v %v", rep, rep.Problem)
	}
}

// TestCheckpointInterval: a device that wrote records checkpoints on the
// interval; an idle one does not.
func TestCheckpointInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := tempLog(t)
		b := newBroker(t, BrokerOptions{Now: time.Now, CheckpointEvery: 1000, CheckpointInterval: 10 * time.Second})
		enable(t, b, "file/", newFileDevice(t, path))
		for range 2 {
			if err := b.LogRequest(t.Context(), &Entry{}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if n := len(readLines(t, path)); n != 2 {
			t.Fatalf("%d lines before the interval, want 2", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := len(readLines(t, path)); n != 3 {
			t.Fatalf("%d lines after the interval, want 3", n)
		}
		time.Sleep(time.Minute) // idle: no more checkpoints
		synctest.Wait()
		if n := len(readLines(t, path)); n != 3 {
			t.Fatalf("%d lines after idling, want 3", n)
		}
		mustVerify(t, path)
	})
}

// stuckDevice blocks in Write, ignoring ctx, until released: a hung disk
// or NFS server, which a test cannot cause for real.
type stuckDevice struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (d *stuckDevice) Name() string { return "stuck/" }
func (d *stuckDevice) Type() string { return "stuck" }
func (d *stuckDevice) Close() error { return nil }
func (d *stuckDevice) Write(_ context.Context, p []byte) error {
	<-d.release
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf.Write(p)
	return nil
}

// TestStuckDevice: a device that never returns holds no caller beyond
// the write timeout, and the others still get the record.
func TestStuckDevice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 2 * time.Second
		b := newBroker(t, BrokerOptions{WriteTimeout: timeout})
		stuck := &stuckDevice{release: make(chan struct{})}
		enable(t, b, "stuck/", stuck)
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				start := time.Now()
				err := b.LogRequest(t.Context(), &Entry{Request: &Request{ID: fmt.Sprint(i)}})
				if !errors.Is(err, ErrFailed) {
					t.Errorf("LogRequest = %v, want ErrFailed", err)
				}
				if d := time.Since(start); d > timeout {
					t.Errorf("caller held %v, timeout %v", d, timeout)
				}
			})
		}
		wg.Wait()

		// With a good device beside it, records succeed.
		path := tempLog(t)
		enable(t, b, "file/", newFileDevice(t, path))
		if err := b.LogRequest(t.Context(), &Entry{}); err != nil {
			t.Fatalf("with a good device: %v", err)
		}

		// Released, the write in progress lands (its caller saw a
		// failure); the withdrawn ones do not. The chain stays whole.
		close(stuck.release)
		if err := b.Disable("stuck/"); err != nil {
			t.Fatal(err)
		}
		rep, err := VerifyReaders([]Source{{Name: "stuck", R: &stuck.buf}}, testPub, nil)
		if err != nil || !rep.OK || rep.Records < 2 { // the late batch and the last checkpoint
			t.Fatalf("stuck device's log: %+v %v %v", rep, rep.Problem, err)
		}
	})
}

// TestResume: a new broker on an existing file continues its chain.
func TestResume(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	writeLog(t, path, 3, 4)
	before := readLines(t, path)
	writeLog(t, path, 3, 4)
	rep := mustVerify(t, path)
	if rep.FirstSeq != 1 || rep.Records != uint64(2*len(before)) {
		t.Fatalf("after resume: %+v", rep)
	}
}

// TestResumeTornTail: a line torn by a crash is cut off on open and the
// chain continues from the last whole record.
func TestResumeTornTail(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	writeLog(t, path, 2, 100)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":6,"prev":"0123`)
	f.Close()
	writeLog(t, path, 2, 100)
	mustVerify(t, path)
}

// TestResumeBadTail: a file that does not end in a record is not
// appended to.
func TestResumeBadTail(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	if err := os.WriteFile(path, []byte("some other log\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, BrokerOptions{})
	dev := newFileDevice(t, path)
	defer dev.Close()
	err := b.Enable("file/", dev, testHMACKey, testSignKey)
	if err == nil || !strings.Contains(err.Error(), "not an audit record") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Enable = %v", err)
	}
}

// TestResumeAfterRotation: a restart that finds the file rotated away and
// no new one continues from the newest rotated file.
func TestResumeAfterRotation(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	writeLog(t, path, 2, 100)
	rotated := path + "." + time.Now().UTC().Format(rotatedSuffix)
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	writeLog(t, path, 2, 100)
	mustVerify(t, rotated, path)
}

// TestReopen: after an outside tool renames the file, Reopen starts a
// new one and the chain carries over.
func TestReopen(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	b := newBroker(t, BrokerOptions{})
	enable(t, b, "file/", newFileDevice(t, path))
	enable(t, b, "stdout/", newStdout("stdout/", TypeStdout, &bytes.Buffer{}))
	log := func() {
		t.Helper()
		if err := b.LogRequest(t.Context(), &Entry{}); err != nil {
			t.Fatal(err)
		}
	}
	log()
	old := filepath.Join(filepath.Dir(path), "audit.log.1")
	if err := os.Rename(path, old); err != nil {
		t.Fatal(err)
	}
	log() // still to the renamed file
	if err := b.Reopen(); err != nil {
		t.Fatal(err)
	}
	log()
	b.Close()
	if n := len(readLines(t, old)); n != 2 {
		t.Fatalf("old file has %d lines", n)
	}
	mustVerify(t, old, path)
}

// TestConcurrentLogging: many callers, two devices; both chains verify.
func TestConcurrentLogging(t *testing.T) {
	t.Parallel()
	a, c := tempLog(t), tempLog(t)
	b := newBroker(t, BrokerOptions{CheckpointEvery: 50})
	enable(t, b, "a/", newFileDevice(t, a))
	enable(t, b, "c/", newFileDevice(t, c, "max_size", "20000"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				req, resp := kvRead(i, fmt.Sprint("pw", g, i))
				if g%2 == 1 { // half of them as a read's pair
					if err := b.LogPair(t.Context(), req, resp); err != nil {
						t.Error(err)
					}
					continue
				}
				if err := b.LogRequest(t.Context(), req); err != nil {
					t.Error(err)
				}
				if err := b.LogResponse(t.Context(), resp); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	info := b.List()
	b.Close()
	rep := mustVerify(t, a)
	if rep.Records != info[0].Counters.Written() || rep.Records != 1600+1600/50 {
		t.Fatalf("a: %d records, %d written", rep.Records, info[0].Counters.Written())
	}
	files, _ := RotatedFiles(c)
	if rep := mustVerify(t, files...); rep.Records != 1600+1600/50 {
		t.Fatalf("c: %d records", rep.Records)
	}
}

// countingDevice wraps a device and counts its Write calls; inline says
// whether it lets callers write (as a regular file does) or queues.
type countingDevice struct {
	Device
	inline bool
	mu     sync.Mutex
	writes []int // lines per write
}

func (d *countingDevice) Inline() bool { return d.inline }
func (d *countingDevice) Write(ctx context.Context, p []byte) error {
	if err := d.Device.Write(ctx, p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes = append(d.writes, bytes.Count(p, []byte{'\n'}))
	return nil
}

// TestLogPair: a request and its response go to each device in one
// write, as two consecutive records (request first) that share the
// HMAC of the caller's token; the chain verifies; a device that fails
// fails both records.
func TestLogPair(t *testing.T) {
	t.Parallel()
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprint("inline=", inline), func(t *testing.T) {
			t.Parallel()
			path := tempLog(t)
			dev := &countingDevice{Device: newFileDevice(t, path), inline: inline}
			b := newBroker(t, BrokerOptions{CheckpointEvery: 1000, CheckpointInterval: time.Hour})
			enable(t, b, "file/", dev)
			for i := range 10 {
				req, resp := kvRead(i, fmt.Sprint("pw", i))
				if err := b.LogPair(t.Context(), req, resp); err != nil {
					t.Fatal(err)
				}
			}
			dev.mu.Lock()
			writes := slices.Clone(dev.writes)
			dev.mu.Unlock()
			if len(writes) != 10 || slices.ContainsFunc(writes, func(n int) bool { return n != 2 }) {
				t.Fatalf("lines per write = %v, want ten writes of 2", writes)
			}
			lines := readLines(t, path)
			for i := 0; i < len(lines); i += 2 {
				var q, p struct {
					Seq  uint64
					Type string
					Auth struct {
						ClientToken string `json:"client_token"`
						Accessor    string
					}
					Response *struct{ Data map[string]any }
				}
				if json.Unmarshal(lines[i], &q) != nil || json.Unmarshal(lines[i+1], &p) != nil {
					t.Fatalf("lines %d-%d are not JSON", i, i+1)
				}
				tok := HashString(testHMACKey, "hvs.CAESIJ3x9k"+fmt.Sprint("pw", i/2))
				if q.Type != TypeRequest || p.Type != TypeResponse || p.Seq != q.Seq+1 || p.Response == nil {
					t.Fatalf("pair %d: %+v then %+v", i/2, q, p)
				}
				if q.Auth.ClientToken != tok || p.Auth.ClientToken != tok || q.Auth.Accessor != p.Auth.Accessor || q.Auth.Accessor == "" {
					t.Fatalf("pair %d: auth %+v / %+v, want client_token %s in both", i/2, q.Auth, p.Auth, tok)
				}
			}
			b.Close()
			if rep := mustVerify(t, path); rep.Records != 21 {
				t.Fatalf("verified %d records, want 20 and a checkpoint", rep.Records)
			}
		})
	}
	t.Run("fails closed", func(t *testing.T) {
		t.Parallel()
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("no /dev/full on this system")
		}
		b := newBroker(t, BrokerOptions{})
		enable(t, b, "full/", newFileDevice(t, "/dev/full"))
		req, resp := kvRead(0, "pw")
		if err := b.LogPair(t.Context(), req, resp); !errors.Is(err, ErrFailed) {
			t.Fatalf("LogPair = %v, want ErrFailed", err)
		}
		d := b.List()[0]
		if d.Counters.Failed() != 2 || d.Counters.Written() != 0 || d.Head.Seq != 0 {
			t.Fatalf("failed %d written %d head %d; want 2, 0, 0", d.Counters.Failed(), d.Counters.Written(), d.Head.Seq)
		}
	})
}

// slowDevice is a regular-file device (inline) whose writes wait for
// gate: a disk that is slow for a moment, which lets callers pile up.
type slowDevice struct {
	countingDevice
	gate chan struct{}
}

func (d *slowDevice) Write(ctx context.Context, p []byte) error {
	<-d.gate
	return d.countingDevice.Write(ctx, p)
}

// TestGroupCommit: callers that arrive while a write to a regular file is
// under way are written together by the next of them, in one call; each
// gets its own result, and the chain verifies. Callers that wait past the
// write timeout fail and their records are not written.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	dev := &slowDevice{countingDevice: countingDevice{Device: newFileDevice(t, path), inline: true}, gate: make(chan struct{})}
	b := newBroker(t, BrokerOptions{CheckpointEvery: 1000, CheckpointInterval: time.Hour})
	enable(t, b, "file/", dev)
	first := make(chan error)
	go func() {
		req, resp := kvRead(0, "pw-first")
		first <- b.LogPair(t.Context(), req, resp)
	}()
	// Wait until the first caller is inside its write, then pile up more.
	dev.sinkBusy(t, b)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			req, resp := kvRead(i+1, fmt.Sprint("pw", i))
			if err := b.LogPair(t.Context(), req, resp); err != nil {
				t.Error(err)
			}
		})
	}
	waitPending(t, b, 8)
	close(dev.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	dev.mu.Lock()
	writes := slices.Clone(dev.writes)
	dev.mu.Unlock()
	if len(writes) != 2 || writes[0] != 2 || writes[1] != 16 {
		t.Fatalf("lines per write = %v, want [2 16]: the eight waiting callers in one write", writes)
	}
	b.Close()
	if rep := mustVerify(t, path); rep.Records != 19 {
		t.Fatalf("verified %d records, want 18 and a checkpoint", rep.Records)
	}
}

// sinkBusy waits until a caller holds the device of the only sink.
func (d *slowDevice) sinkBusy(t *testing.T, b *Broker) {
	t.Helper()
	s := onlySink(b)
	for deadline := time.Now().Add(10 * time.Second); len(s.sem) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no caller took the device")
		}
	}
}

// waitPending waits until n records wait in the only sink's pending list.
func waitPending(t *testing.T, b *Broker, n int) {
	t.Helper()
	s := onlySink(b)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.pendingMu.Lock()
		got := len(s.pending)
		s.pendingMu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers pending, want %d", got, n)
		}
	}
}

func onlySink(b *Broker) *sink {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.sinks {
		return s
	}
	return nil
}

// TestGroupCommitTimeout: with the device held by a write that does not
// return, waiting callers give up at the write timeout, and their records
// never reach the log; the chain stays whole once the write completes.
func TestGroupCommitTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 2 * time.Second
		path := tempLog(t)
		dev := &slowDevice{countingDevice: countingDevice{Device: newFileDevice(t, path), inline: true}, gate: make(chan struct{})}
		b := newBroker(t, BrokerOptions{WriteTimeout: timeout, CheckpointInterval: time.Hour})
		enable(t, b, "file/", dev)
		first := make(chan error)
		go func() {
			req, resp := kvRead(0, "pw-first")
			first <- b.LogPair(t.Context(), req, resp)
		}()
		synctest.Wait() // the first caller is blocked in its write
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				start := time.Now()
				req, resp := kvRead(i+1, fmt.Sprint("pw", i))
				err := b.LogPair(t.Context(), req, resp)
				if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "timed out") {
					t.Errorf("LogPair = %v, want a timeout", err)
				}
				if d := time.Since(start); d > timeout {
					t.Errorf("caller held %v, timeout %v", d, timeout)
				}
			})
		}
		wg.Wait()
		close(dev.gate)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if d := b.List()[0]; d.Counters.Failed() != 8 || d.Counters.Written() != 2 {
			t.Fatalf("failed %d written %d, want 8 and 2", d.Counters.Failed(), d.Counters.Written())
		}
		b.Close()
		if rep := mustVerify(t, path); rep.Records != 3 {
			t.Fatalf("verified %d records, want the first pair and a checkpoint", rep.Records)
		}
	})
}

// BenchmarkLogPair: the cost per audited read on one file device: two
// entries rendered, framed, hashed and written in one call.
func BenchmarkLogPair(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprint("callers=", par), func(b *testing.B) {
			bk := newBroker(b, BrokerOptions{})
			enable(b, bk, "file/", newFileDevice(b, filepath.Join(b.TempDir(), "audit.log")))
			b.ReportAllocs()
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					req, resp := kvRead(i, "pw")
					if err := bk.LogPair(context.Background(), req, resp); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
