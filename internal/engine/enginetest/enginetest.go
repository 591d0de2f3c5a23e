// Package enginetest drives a secrets engine's routes the way the core
// does, for the engines' own tests. It is for tests only.
//
//	routes := engine.Routes()
//	resp, err := enginetest.Do(t, routes, "transit/", core.OpWrite, "keys/k", map[string]any{"type": "ed25519"})
//	enginetest.CheckErr(t, err, 400, "unknown key type ...")
//	data := enginetest.Wire(t, resp.Data) // as a client decodes it
package enginetest

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
)

// Clock is a settable clock for an engine's now function.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

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

// Do runs one request against routes mounted at mount ("secret/"): the
// route match, create or update by the route's existence check (for
// OpWrite), the handler. body is marshalled unless it is a string, which
// is sent as is; query is name, value pairs.
func Do(t testing.TB, routes []core.Route, mount string, op core.Operation, path string, body any, query ...string) (*core.Response, error) {
	t.Helper()
	r := &core.Request{Operation: op, Path: mount + path, RoutePath: path, Query: url.Values{}, MountPath: mount}
	for i := 0; i+1 < len(query); i += 2 {
		r.Query.Add(query[i], query[i+1])
	}
	switch b := body.(type) {
	case nil:
	case string:
		r.Body = json.RawMessage(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal body: %v", err)
		}
		r.Body = raw
	}
	rt, params, err := core.MatchRoute(routes, path)
	if err != nil {
		return nil, err
	}
	r.Params = params
	if op == core.OpWrite {
		op = core.OpUpdate
		if rt.Exists != nil {
			ok, err := rt.Exists(t.Context(), r)
			if err != nil {
				return nil, err
			}
			if !ok && rt.Handlers[core.OpCreate] != nil {
				op = core.OpCreate
			}
		}
		r.Operation = op
	}
	hd, ok := rt.Handlers[op]
	if !ok {
		return nil, core.ErrUnsupportedOperation
	}
	return hd(t.Context(), r)
}

// OK runs a request that must succeed with a 200 or 204 and returns its
// data as Wire does (nil for a 204).
func OK(t testing.TB, routes []core.Route, mount string, op core.Operation, path string, body any, query ...string) map[string]any {
	t.Helper()
	resp, err := Do(t, routes, mount, op, path, body, query...)
	if err != nil {
		t.Fatalf("%s %s: %v", op, path, err)
	}
	if resp == nil {
		return nil
	}
	if resp.NotFoundWithData || resp.Status != 0 && resp.Status != 200 {
		t.Fatalf("%s %s: status %d (404 with data: %v): %v", op, path, resp.Status, resp.NotFoundWithData, Wire(t, resp.Data))
	}
	return Wire(t, resp.Data)
}

// CheckErr asserts that err is what the transport turns into status and
// msg (a prefix when msg ends in "..."). Sentinels map as the transport
// maps them, with any msg.
func CheckErr(t testing.TB, err error, status int, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %d %q, got success", status, msg)
	}
	for sentinel, code := range map[error]int{core.ErrNotFound: 404, core.ErrUnsupportedPath: 404, core.ErrUnsupportedOperation: 405} {
		if errors.Is(err, sentinel) {
			if status != code {
				t.Fatalf("want %d %q, got %v", status, msg, err)
			}
			return
		}
	}
	var ce *core.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *core.Error %d %q, got %T %v", status, msg, err, err)
	}
	if ce.Status != status {
		t.Fatalf("status = %d, want %d (%q)", ce.Status, status, ce.Msg)
	}
	if prefix, ok := strings.CutSuffix(msg, "..."); ok {
		if !strings.HasPrefix(ce.Msg, prefix) {
			t.Fatalf("message = %q, want prefix %q", ce.Msg, prefix)
		}
		return
	}
	if ce.Msg != msg {
		t.Fatalf("message = %q, want %q", ce.Msg, msg)
	}
}

// Wire round-trips v through JSON as the transport and a client would
// (numbers as json.Number).
func Wire(t testing.TB, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal response: %v", err)
	}
	m, err := field.DecodeObject(raw)
	if err != nil {
		t.Fatalf("response %s is not an object: %v", raw, err)
	}
	return m
}

// Num returns a JSON number of a Wire result as an int.
func Num(t testing.TB, v any) int {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		t.Fatalf("%v: %v", n, err)
	}
	return i
}
