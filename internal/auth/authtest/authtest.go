// Package authtest drives an auth method's routes the way the core does,
// for the tests of the auth methods. It is for tests only.
//
//	m := authtest.NewMount(t, kubernetes.New, "auth/kubernetes/")
//	m.Write("config", map[string]any{...})
//	login, err := m.Login(map[string]string{"role": "r", "jwt": raw})
//	authtest.WantErr(t, err, 403, "namespace not authorized")
package authtest

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
)

// T0 is the start of every Clock.
var T0 = time.Date(2026, 11, 22, 13, 36, 40, 0, time.UTC)

// Clock is a settable clock, starting at T0.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a clock at T0.
func NewClock() *Clock { return &Clock{t: T0} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Mount is one auth method mount on a fresh in-memory store.
type Mount struct {
	T       testing.TB
	Backend core.Backend
	Path    string // "auth/kubernetes/"
	// RemoteAddr is the client address of every request.
	RemoteAddr string
	routes     []core.Route
}

// NewMount builds a backend with factory at mount path path.
func NewMount(t testing.TB, factory core.Factory, path string) *Mount {
	t.Helper()
	b, err := factory(t.Context(), core.BackendConfig{
		Storage:   storage.NewView(inmem.New(), "auth/5c1d2e3f/"),
		MountPath: path,
		Accessor:  "auth_" + strings.Trim(strings.TrimPrefix(path, "auth/"), "/") + "_1234",
	})
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	return &Mount{T: t, Backend: b, Path: path, RemoteAddr: "10.1.2.3:40000", routes: b.Routes()}
}

// Do runs one request. body is marshalled unless it is a string. OpWrite
// becomes create or update through the route's existence check.
func (m *Mount) Do(op core.Operation, path string, body any) (*core.Response, error) {
	m.T.Helper()
	r := &core.Request{Operation: op, Path: m.Path + path, RoutePath: path, MountPath: m.Path, RemoteAddr: m.RemoteAddr}
	switch v := body.(type) {
	case nil:
	case string:
		r.Body = json.RawMessage(v)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			m.T.Fatal(err)
		}
		r.Body = raw
	}
	rt, params, err := core.MatchRoute(m.routes, path)
	if err != nil {
		return nil, err
	}
	r.Params = params
	if op == core.OpWrite {
		op = core.OpUpdate
		if rt.Exists != nil {
			ok, err := rt.Exists(m.T.Context(), r)
			if err != nil {
				return nil, err
			}
			if !ok {
				op = core.OpCreate
			}
		}
		r.Operation = op
	}
	if !rt.Unauthenticated && path == "login" {
		m.T.Fatal("the login route must be unauthenticated")
	}
	h, ok := rt.Handlers[op]
	if !ok {
		return nil, core.ErrUnsupportedOperation
	}
	return h(m.T.Context(), r)
}

// Write runs a write that must succeed.
func (m *Mount) Write(path string, body any) {
	m.T.Helper()
	if _, err := m.Do(core.OpWrite, path, body); err != nil {
		m.T.Fatalf("write %s: %v", path, err)
	}
}

// Read runs a read that must succeed and returns its data decoded as a
// client decodes it (numbers as float64).
func (m *Mount) Read(path string) map[string]any {
	m.T.Helper()
	resp, err := m.Do(core.OpRead, path, nil)
	if err != nil {
		m.T.Fatalf("read %s: %v", path, err)
	}
	raw, err := json.Marshal(resp.Data)
	if err != nil {
		m.T.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		m.T.Fatal(err)
	}
	return out
}

// Login posts body to login and returns the login the core would mint a
// token for.
func (m *Mount) Login(body any) (*core.Login, error) {
	m.T.Helper()
	resp, err := m.Do(core.OpWrite, "login", body)
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.Login == nil {
		m.T.Fatalf("login answered %+v without a Login", resp)
	}
	return resp.Login, nil
}

// WantErr checks that err has the HTTP status the transport would send
// and that its message contains msg.
func WantErr(t testing.TB, err error, status int, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %d %q", status, msg)
	}
	got := 0
	var ce *core.Error
	switch {
	case errors.As(err, &ce):
		got = ce.Status
	case errors.Is(err, core.ErrPermissionDenied):
		got = 403
	case errors.Is(err, core.ErrNotFound):
		got = 404
	}
	if got != status || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error = %d %q; want %d containing %q", got, err, status, msg)
	}
}
