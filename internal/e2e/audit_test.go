package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/servertest"
)

// TestAuditTrail enables a file device, makes requests, checks the trail
// holds request and response entries with every secret HMAC'd, verifies
// it with `coffer audit verify`, and detects an edit.
func TestAuditTrail(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	ctx := t.Context()
	c := client(t, p.Addr, "root")
	logFile := filepath.Join(t.TempDir(), "audit.log")
	mustWrite(t, ctx, c, "sys/audit/file", map[string]any{"type": "file", "options": map[string]string{"file_path": logFile}})
	const secret = "audit-s3cr3t-value"
	mustWrite(t, ctx, c, "secret/data/app/db", map[string]any{"data": map[string]any{"password": secret}})
	if s, err := c.Logical().Read(ctx, "secret/data/app/db", nil); err != nil || s == nil {
		t.Fatalf("read: %v", err)
	}
	hs, err := c.Logical().Write(ctx, "sys/audit-hash/file", map[string]any{"input": secret})
	if err != nil {
		t.Fatal(err)
	}
	hash := hs.Data["hash"].(string)
	if !strings.HasPrefix(hash, "hmac-sha256:") {
		t.Fatalf("audit-hash = %q", hash)
	}

	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), `"client_token":"root"`) {
		t.Fatal("the audit log holds a secret value or the token in plaintext")
	}
	if !strings.Contains(string(raw), hash) {
		t.Fatal("the audit-hash of the secret is not in the log: investigators could not find it")
	}
	// Every entry made with the root token carries the token's HMAC (the
	// device remembers it per token after the first request).
	th, err := c.Logical().Write(ctx, "sys/audit-hash/file", map[string]any{"input": "root"})
	if err != nil {
		t.Fatal(err)
	}
	tokenHash := th.Data["hash"].(string)
	types := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	var prev map[string]any
	reads := 0
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		types[rec["type"].(string)]++
		if a, ok := rec["auth"].(map[string]any); ok && a["client_token"] != tokenHash {
			t.Errorf("entry's client_token %v, want the token's audit-hash %s", a["client_token"], tokenHash)
		}
		if rec["type"] == "request" {
			req := rec["request"].(map[string]any)
			if req["path"] == "secret/data/app/db" && req["mount_type"] != "kv" {
				t.Errorf("request entry lacks the mount type: %v", req)
			}
		}
		// A read's two entries are written together: the request entry
		// right before its response entry, stamped no later.
		if rec["type"] == "response" && rec["request"].(map[string]any)["operation"] == "read" {
			reads++
			id := rec["request"].(map[string]any)["id"]
			if prev == nil || prev["type"] != "request" || prev["request"].(map[string]any)["id"] != id ||
				prev["time"].(string) > rec["time"].(string) {
				t.Errorf("read response %v not directly after its request entry (previous line %v)", id, prev)
			}
		}
		prev = rec
	}
	if reads == 0 {
		t.Error("no read in the log")
	}
	if types["request"] < 3 || types["response"] < 3 {
		t.Fatalf("entry types: %v", types)
	}

	r := runCLI(t, p.Addr, "root", "", "audit", "verify", "-format=table", "-device=file", logFile)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "OK") {
		t.Fatalf("verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, p.Addr, "root", "", "audit", "list", "-format=json"); !strings.Contains(r.stdout, "public_key") {
		t.Fatalf("audit list: %s", r.stdout)
	}
	// an edited record is found
	edited := filepath.Join(t.TempDir(), "edited.log")
	writeFile(t, edited, strings.Replace(string(raw), `"operation":"read"`, `"operation":"list"`, 1))
	r = runCLI(t, p.Addr, "root", "", "audit", "verify", "-format=table", "-device=file", edited)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL") {
		t.Fatalf("verify edited: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// a truncated tail is found against the server's head
	lines := strings.SplitAfter(string(raw), "\n")
	cut := filepath.Join(t.TempDir(), "cut.log")
	writeFile(t, cut, strings.Join(lines[:len(lines)-3], ""))
	r = runCLI(t, p.Addr, "root", "", "audit", "verify", "-format=table", "-device=file", cut)
	if r.code != 1 {
		t.Fatalf("verify truncated: %d %s", r.code, r.stdout)
	}
}

// TestAuditFailsClosed: with the only device unable to write, requests
// fail with 500 and return no secret.
func TestAuditFailsClosed(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	ctx := t.Context()
	c := client(t, p.Addr, "root")
	mustWrite(t, ctx, c, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "closed-s3cret"}})
	mustWrite(t, ctx, c, "sys/audit/full", map[string]any{"type": "file", "options": map[string]string{"file_path": "/dev/full"}})
	status, body := rawDo(t, "GET", p.Addr+"/v1/secret/data/app/db", "root", "", nil)
	if status != 500 || strings.Contains(body, "closed-s3cret") || !strings.Contains(body, "no enabled audit device accepted") {
		t.Fatalf("read with a failing audit device: %d %s", status, body)
	}
	// a write is refused before its handler runs: nothing is stored
	status, body = rawDo(t, "PUT", p.Addr+"/v1/secret/data/app/db", "root", `{"data":{"password":"unlogged"}}`, nil)
	if status != 500 || !strings.Contains(body, "no enabled audit device accepted") {
		t.Fatalf("write with a failing audit device: %d %s", status, body)
	}
	// a second, working device lets requests through again
	logFile := filepath.Join(t.TempDir(), "ok.log")
	if status, body := rawDo(t, "PUT", p.Addr+"/v1/sys/audit/ok", "root", `{"type":"file","options":{"file_path":"`+logFile+`"}}`, nil); status != 204 {
		t.Fatalf("enable second device: %d %s", status, body)
	}
	status, body = rawDo(t, "GET", p.Addr+"/v1/secret/data/app/db", "root", "", nil)
	if status != 200 || !strings.Contains(body, "closed-s3cret") || !strings.Contains(body, `"version":1`) {
		t.Fatalf("read with one working device (the refused write must not have landed): %d %s", status, body)
	}
	// bad device configs are refused and not enabled
	for _, bad := range []string{`{"type":"nope"}`, `{"type":"file","options":{"file_path":"/nonexistent/dir/x.log"}}`, `{"type":"file","options":{"bogus":"1"}}`} {
		if status, body := rawDo(t, "PUT", p.Addr+"/v1/sys/audit/bad", "root", bad, nil); status != 400 {
			t.Fatalf("enable %s: %d %s", bad, status, body)
		}
	}
	if s, _ := c.Logical().Read(ctx, "sys/audit", nil); s == nil || s.Data["bad/"] != nil {
		t.Fatalf("a refused device was listed: %v", s)
	}
}

// TestAuditDiskFull: the only audit device is a file on a 64 KiB tmpfs.
// Once the filesystem fills, requests fail closed (500, no secret), and
// they succeed again when space is freed by rotating the log away.
func TestAuditDiskFull(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs (needed for the disk-full test): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })

	p := servertest.Start(t, servertest.Options{Dev: true})
	ctx := t.Context()
	c := client(t, p.Addr, "root")
	mustWrite(t, ctx, c, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "diskfull-s3cret"}})
	logFile := filepath.Join(mnt, "audit.log")
	mustWrite(t, ctx, c, "sys/audit/small", map[string]any{"type": "file", "options": map[string]string{"file_path": logFile}})

	var status int
	var body string
	ok := 0
	for i := 0; i < 10000; i++ {
		status, body = rawDo(t, "GET", p.Addr+"/v1/secret/data/app/db", "root", "", nil)
		if status != 200 {
			break
		}
		ok++
	}
	if status != 500 || strings.Contains(body, "diskfull-s3cret") {
		t.Fatalf("after %d reads the disk is full, yet: %d %s", ok, status, body)
	}
	if ok == 0 {
		t.Fatal("no read succeeded before the disk filled")
	}
	// Still closed on the next request: no partial record lets it through.
	if status, body := rawDo(t, "GET", p.Addr+"/v1/secret/data/app/db", "root", "", nil); status != 500 || strings.Contains(body, "diskfull-s3cret") {
		t.Fatalf("second read on a full disk: %d %s", status, body)
	}
	// Free the space: move the full log away (to another filesystem) and
	// reopen with SIGHUP, as logrotate does.
	if err := exec.Command("mv", logFile, filepath.Join(dir, "audit.log.1")).Run(); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body = rawDo(t, "GET", p.Addr+"/v1/secret/data/app/db", "root", "", nil)
		if status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != 200 || !strings.Contains(body, "diskfull-s3cret") {
		t.Fatalf("after freeing space: %d %s", status, body)
	}
}
