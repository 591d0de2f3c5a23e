package core

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/audit"
	"github.com/cofferhq/coffer/internal/metrics"
	"github.com/cofferhq/coffer/internal/storage"
)

// auditTableKey is where enabled audit devices are kept, in the barrier:
// their options and their per-device HMAC and signing keys.
const auditTableKey = "core/audit"

// auditDevice is one row of the audit table.
type auditDevice struct {
	Path        string            `json:"path"`
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Options     map[string]string `json:"options"`
	HMACKey     []byte            `json:"hmac_key"`
	SignSeed    []byte            `json:"sign_seed"`
	CreatedAt   time.Time         `json:"created_at"`
}

// ErrAuditFailed: no enabled audit device accepted a record; the request
// fails closed (500) and returns nothing.
var ErrAuditFailed = errors.New("audit: no enabled audit device accepted the record; the request was refused")

func (c *Core) loadAuditTable(ctx context.Context) ([]auditDevice, error) {
	raw, err := c.barrier.Get(ctx, auditTableKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var t []auditDevice
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode audit table: %w", err)
	}
	return t, nil
}

func (c *Core) saveAuditTable(ctx context.Context, t []auditDevice) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return c.barrier.Put(ctx, auditTableKey, raw)
}

// setupAudit enables every device in the table at unseal. A device that
// cannot be opened is logged and left out; with others enabled requests
// still go through, and with none that was configured accepted, requests
// fail closed.
func (c *Core) setupAudit(ctx context.Context) error {
	t, err := c.loadAuditTable(ctx)
	if err != nil {
		return err
	}
	c.auditConfigured.Store(len(t) > 0)
	for _, d := range t {
		if err := c.enableDevice(d); err != nil {
			c.logger.Error("audit device could not be enabled at unseal", "path", d.Path, "type", d.Type, "error", err)
		}
	}
	return nil
}

func (c *Core) enableDevice(d auditDevice) error {
	dev, err := audit.NewDevice(d.Path, d.Type, d.Options)
	if err != nil {
		return err
	}
	key := ed25519.NewKeyFromSeed(d.SignSeed)
	if err := c.audit.Enable(d.Path, dev, d.HMACKey, key); err != nil {
		dev.Close()
		return err
	}
	return nil
}

func (c *Core) teardownAudit() {
	for _, d := range c.audit.List() {
		_ = c.audit.Disable(d.Path)
	}
	c.auditConfigured.Store(false)
}

// ReopenAudit reopens file devices (log rotation on SIGHUP).
func (c *Core) ReopenAudit() error { return c.audit.Reopen() }

func (c *Core) auditStats() []metrics.AuditStats {
	var out []metrics.AuditStats
	for _, d := range c.audit.List() {
		s := metrics.AuditStats{Path: d.Path, Type: d.Type}
		if d.Counters != nil {
			s.Written, s.Failed = d.Counters.Written(), d.Counters.Failed()
		}
		out = append(out, s)
	}
	return out
}

// auditing reports whether requests must be audited.
func (c *Core) auditing() bool { return c.auditConfigured.Load() }

// auditExempt says whether a failed audit write may let the request go
// on: only changes to the audit devices themselves (sudo-protected), so
// an operator can replace a device that fails every write instead of
// being locked out. The failure is still logged.
func auditExempt(req *Request) bool {
	return strings.HasPrefix(req.Path, "sys/audit/") && req.Operation != OpRead && req.Operation != OpList
}

func (c *Core) auditAuth(a *Auth, tok string) *audit.Auth {
	if a == nil {
		return nil
	}
	return &audit.Auth{TokenID: a.TokenID, ClientToken: tok, Accessor: a.Accessor, DisplayName: a.DisplayName,
		Policies: a.Policies, TokenPolicies: a.Policies, Metadata: a.Metadata, EntityID: a.EntityID, TokenType: "service"}
}

func (c *Core) auditRequest(req *Request) *audit.Request {
	ar := &audit.Request{ID: req.ID, Operation: string(req.Operation), Path: req.Path, RemoteAddress: hostOnly(req.RemoteAddr)}
	if req.MountPoint != nil {
		ar.MountType, ar.MountAccessor = req.MountPoint.Type, req.MountPoint.Accessor
	}
	if len(req.Body) > 0 {
		var data any
		if json.Unmarshal(req.Body, &data) == nil {
			ar.Data = data
		}
	}
	return ar
}

// auditRecord is what a request's audit entries share: its request entry,
// once built (the response entry repeats its auth and request parts).
type auditRecord struct {
	req *audit.Entry
}

// requestEntry builds (once) the request entry, stamped now; errText is
// set for requests refused before their handler ran.
func (c *Core) requestEntry(rec *auditRecord, req *Request, errText string) *audit.Entry {
	if rec.req == nil {
		rec.req = &audit.Entry{Time: c.now(), Auth: c.auditAuth(req.Auth, req.Token), Request: c.auditRequest(req)}
	}
	rec.req.Error = errText
	return rec.req
}

func (c *Core) responseEntry(rec *auditRecord, req *Request, resp *Response, herr error) *audit.Entry {
	if rec.req == nil {
		c.requestEntry(rec, req, "")
	}
	e := &audit.Entry{Auth: rec.req.Auth, Request: rec.req.Request}
	if herr != nil {
		e.Error = herr.Error()
	}
	if resp != nil {
		ar := &audit.Response{Data: resp.Data, Warnings: resp.Warnings}
		if resp.Raw != nil {
			ar.Data = resp.Raw
		}
		if a := resp.Auth; a != nil {
			ar.Auth = &audit.Auth{ClientToken: a.ClientToken, Accessor: a.Accessor, Policies: a.Policies,
				TokenPolicies: a.TokenPolicies, Metadata: a.Metadata, EntityID: a.EntityID, TokenType: a.TokenType, TokenTTL: a.LeaseDuration}
		}
		e.Response = ar
	}
	return e
}

// logRequest writes the request entry before the handler runs; errText
// is set for requests refused before their handler ran.
func (c *Core) logRequest(ctx context.Context, rec *auditRecord, req *Request, errText string) error {
	if !c.auditing() {
		return nil
	}
	return c.auditResult(req, "request", c.audit.LogRequest(ctx, c.requestEntry(rec, req, errText)))
}

// logResponse writes the response entry, preceded by the request entry
// when that was deferred (pair): see Route.AuditFirst.
func (c *Core) logResponse(ctx context.Context, rec *auditRecord, req *Request, resp *Response, herr error, pair bool) error {
	if !c.auditing() {
		return nil
	}
	e := c.responseEntry(rec, req, resp, herr)
	if pair {
		return c.auditResult(req, "response", c.audit.LogPair(ctx, rec.req, e))
	}
	return c.auditResult(req, "response", c.audit.LogResponse(ctx, e))
}

// auditResult turns a failed audit write into the request's failure
// (closed), but for changes to the audit devices themselves.
func (c *Core) auditResult(req *Request, what string, err error) error {
	if err == nil {
		return nil
	}
	if auditExempt(req) {
		c.logger.Error("audit "+what+" failed; allowed because it changes the audit devices", "request_id", req.ID, "path", req.Path, "error", err)
		return nil
	}
	c.logger.Error("audit "+what+" failed: failing closed", "request_id", req.ID, "path", req.Path, "error", err)
	return ErrAuditFailed
}

// --- sys/audit routes ---

type auditEnableInput struct {
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
}

func auditPath(r *Request) (string, error) {
	p := strings.Trim(r.Params["path"], "/")
	if p == "" || strings.ContainsAny(p, "\x00*+") || hasDotDot(p) {
		return "", BadRequest("invalid audit device path %q", r.Params["path"])
	}
	return p + "/", nil
}

func hasDotDot(p string) bool {
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." {
			return true
		}
	}
	return false
}

func (s *sysBackend) listAudit(ctx context.Context, r *Request) (*Response, error) {
	t, err := s.c.loadAuditTable(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string]audit.DeviceInfo{}
	for _, d := range s.c.audit.List() {
		live[d.Path] = d
	}
	data := map[string]any{}
	sort.Slice(t, func(i, j int) bool { return t[i].Path < t[j].Path })
	for _, d := range t {
		row := map[string]any{"type": d.Type, "description": d.Description, "options": d.Options,
			"local": false, "path": d.Path, "enabled": false}
		if l, ok := live[d.Path]; ok {
			row["enabled"] = true
			row["public_key"] = base64.StdEncoding.EncodeToString(l.PublicKey)
			row["key_id"] = l.KeyID
			row["head"] = map[string]any{"seq": l.Head.Seq, "hash": l.Head.Hash}
		}
		data[d.Path] = row
	}
	return &Response{Data: data, TopLevel: data}, nil
}

func (s *sysBackend) enableAudit(ctx context.Context, r *Request) (*Response, error) {
	path, err := auditPath(r)
	if err != nil {
		return nil, err
	}
	var in auditEnableInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Type == "" {
		return nil, BadRequest("audit device type must be specified (file, socket or stdout)")
	}
	s.c.auditMu.Lock()
	defer s.c.auditMu.Unlock()
	t, err := s.c.loadAuditTable(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range t {
		if d.Path == path {
			return nil, BadRequest("path already in use: an audit device is enabled at %s", path)
		}
	}
	d := auditDevice{Path: path, Type: in.Type, Description: in.Description, Options: in.Options,
		HMACKey: make([]byte, 32), SignSeed: make([]byte, ed25519.SeedSize), CreatedAt: s.c.now().UTC()}
	if _, err := rand.Read(d.HMACKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(d.SignSeed); err != nil {
		return nil, err
	}
	if err := s.c.enableDevice(d); err != nil {
		return nil, BadRequest("audit device not enabled: %v", err)
	}
	if err := s.c.saveAuditTable(ctx, append(t, d)); err != nil {
		_ = s.c.audit.Disable(path)
		return nil, err
	}
	s.c.auditConfigured.Store(true)
	s.c.logger.Info("audit device enabled", "path", path, "type", in.Type)
	return nil, nil
}

func (s *sysBackend) disableAudit(ctx context.Context, r *Request) (*Response, error) {
	path, err := auditPath(r)
	if err != nil {
		return nil, err
	}
	s.c.auditMu.Lock()
	defer s.c.auditMu.Unlock()
	t, err := s.c.loadAuditTable(ctx)
	if err != nil {
		return nil, err
	}
	var keep []auditDevice
	for _, d := range t {
		if d.Path != path {
			keep = append(keep, d)
		}
	}
	if len(keep) == len(t) {
		return nil, nil
	}
	if err := s.c.saveAuditTable(ctx, keep); err != nil {
		return nil, err
	}
	_ = s.c.audit.Disable(path)
	s.c.auditConfigured.Store(len(keep) > 0)
	s.c.logger.Info("audit device disabled", "path", path)
	return nil, nil
}

type auditHashInput struct {
	Input string `json:"input"`
}

func (s *sysBackend) auditHash(ctx context.Context, r *Request) (*Response, error) {
	path, err := auditPath(r)
	if err != nil {
		return nil, err
	}
	var in auditHashInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	h, ok := s.c.audit.HashString(path, in.Input)
	if !ok {
		return nil, BadRequest("unknown audit device %q", path)
	}
	return &Response{Data: map[string]any{"hash": h}}, nil
}
