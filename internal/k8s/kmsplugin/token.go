package kmsplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cofferhq/coffer/api"
)

// Auth is how the plugin gets its coffer token: a TokenFile or a Login.
type Auth interface {
	// obtain gets a token. base carries the server address and no token.
	obtain(ctx context.Context, base *api.Client) (*grant, error)
	// check reports a configuration problem, such as a missing file,
	// before the plugin starts.
	check() error
	String() string
}

// watcher is the optional power of an Auth whose token can change under
// the plugin: changed reports whether obtain would now give a token other
// than current.
type watcher interface {
	changed(current string) bool
}

// grant is a token and what is known of its lifetime.
type grant struct {
	token     string
	ttl       time.Duration // 0: never expires; unknownTTL: not looked up yet
	renewable bool
	at        time.Time // when ttl was measured
	initial   time.Duration
}

const unknownTTL = -1

// TokenFile reads the token from a file, for example a periodic token
// created with `coffer token create -period 24h -policy kms-plugin`. The
// file is read again when it changes, so the token can be replaced
// without restarting the plugin; a renewable token is renewed.
type TokenFile struct{ Path string }

func (f TokenFile) String() string { return "token file " + f.Path }

func (f TokenFile) check() error {
	_, err := readToken(f.Path, "token")
	return err
}

func (f TokenFile) obtain(_ context.Context, _ *api.Client) (*grant, error) {
	tok, err := readToken(f.Path, "token")
	if err != nil {
		return nil, err
	}
	return &grant{token: tok, ttl: unknownTTL, at: time.Now()}, nil
}

func (f TokenFile) changed(current string) bool {
	tok, err := readToken(f.Path, "token")
	return err == nil && tok != current
}

// Login logs in to a coffer auth method that takes a role and a JWT: the
// kubernetes method with a service-account token, or the jwt method with
// any token its configuration trusts. The JWT file is read at every login,
// so a projected, rotating token works.
type Login struct {
	Method  string // "kubernetes" or "jwt", for messages
	Mount   string // auth mount path, e.g. "kubernetes"
	Role    string
	JWTFile string
}

func (l Login) String() string {
	return fmt.Sprintf("%s login at auth/%s as role %q", l.Method, strings.Trim(l.Mount, "/"), l.Role)
}

func (l Login) check() error {
	if l.Role == "" {
		return errors.New("login needs a role (-role)")
	}
	_, err := readToken(l.JWTFile, "JWT")
	return err
}

func (l Login) obtain(ctx context.Context, base *api.Client) (*grant, error) {
	jwt, err := readToken(l.JWTFile, "JWT")
	if err != nil {
		return nil, err
	}
	a, err := base.Auth().Login(ctx, l.Mount, map[string]string{"role": l.Role, "jwt": jwt})
	if err != nil {
		return nil, err
	}
	ttl := time.Duration(a.LeaseDuration) * time.Second
	return &grant{token: a.ClientToken, ttl: ttl, renewable: a.Renewable, at: time.Now(), initial: ttl}, nil
}

func readToken(path, what string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("no %s file given", what)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s file: %w", what, err)
	}
	tok := strings.TrimSpace(string(b))
	clear(b)
	if tok == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return tok, nil
}

// Timings of the token manager.
const (
	minWait     = 5 * time.Second
	retryMin    = time.Second
	retryMax    = 30 * time.Second
	minReobtain = 10 * time.Second // a refused call re-obtains at most this often
	defaultPoll = 5 * time.Second
	idleRecheck = time.Hour // a token that never expires is looked up again this often
)

type tokenAction int

const (
	actObtain tokenAction = iota
	actLookup
	actRenew
)

// tokenManager keeps a valid coffer token: it obtains one from its Auth,
// renews it at two thirds of its TTL, obtains a new one when renewal fails
// or the token file changes, and when a call was refused (denied).
type tokenManager struct {
	base    *api.Client
	auth    Auth
	timeout time.Duration
	poll    time.Duration
	logger  *slog.Logger
	metrics *metrics

	cur  atomic.Pointer[api.Client] // carries the current token; nil before the first
	kick chan struct{}              // buffered 1: a call was refused with 403

	// mu guards lastErr.
	mu      sync.Mutex
	lastErr error
}

func newTokenManager(base *api.Client, auth Auth, timeout, poll time.Duration, logger *slog.Logger, m *metrics) *tokenManager {
	if poll <= 0 {
		poll = defaultPoll
	}
	return &tokenManager{base: base.WithToken(""), auth: auth, timeout: timeout, poll: poll,
		logger: logger, metrics: m, kick: make(chan struct{}, 1)}
}

// client returns a client carrying the current token, or nil.
func (m *tokenManager) client() *api.Client { return m.cur.Load() }

// err is the last problem keeping the token, or nil.
func (m *tokenManager) err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

func (m *tokenManager) setErr(err error) {
	m.mu.Lock()
	m.lastErr = err
	m.mu.Unlock()
}

// denied tells the manager that coffer refused the current token.
func (m *tokenManager) denied() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// tokenState is the token manager's loop state, owned by Run.
type tokenState struct {
	g          *grant      // nil until the first token
	act        tokenAction // what to do next
	next       time.Time   // when; zero: now
	obtainedAt time.Time
	retry      time.Duration // the next back-off after a failure
}

// fail records err and retries the same action after a growing pause.
func (m *tokenManager) fail(s *tokenState, err error) {
	m.setErr(err)
	s.next = time.Now().Add(s.retry)
	s.retry = min(s.retry*2, retryMax)
}

// Run keeps the token valid until ctx ends.
func (m *tokenManager) Run(ctx context.Context) error {
	s := &tokenState{act: actObtain, retry: retryMin}
	var pollC <-chan time.Time
	if _, ok := m.auth.(watcher); ok {
		t := time.NewTicker(m.poll)
		defer t.Stop()
		pollC = t.C
	}
	for m.wait(ctx, s, pollC) {
		cctx, cancel := context.WithTimeout(ctx, m.timeout)
		switch s.act {
		case actObtain:
			m.obtain(cctx, s)
		case actLookup:
			m.lookup(cctx, s)
		case actRenew:
			m.renew(cctx, s)
		}
		cancel()
		m.metrics.tokenExpiry(s.g)
	}
	return nil
}

// wait sleeps until s.next, or until the token file changes or a call is
// refused (both make the next action an obtain). It returns false when
// ctx ends.
func (m *tokenManager) wait(ctx context.Context, s *tokenState, pollC <-chan time.Time) bool {
	for {
		d := time.Until(s.next)
		if d <= 0 {
			return ctx.Err() == nil
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
			return true
		case <-pollC:
			timer.Stop()
			if s.g != nil && m.auth.(watcher).changed(s.g.token) {
				m.logger.Info("token file changed: reading the new token", "auth", m.auth.String())
				s.act, s.next = actObtain, time.Time{}
			}
		case <-m.kick:
			timer.Stop()
			if s.g != nil && time.Since(s.obtainedAt) >= minReobtain {
				m.logger.Warn("coffer refused the token: obtaining a new one", "auth", m.auth.String())
				s.act, s.next = actObtain, time.Time{}
			}
		}
	}
}

func (m *tokenManager) obtain(ctx context.Context, s *tokenState) {
	g, err := m.auth.obtain(ctx, m.base)
	m.metrics.tokenEvent("obtain", err)
	if err != nil {
		m.logger.Error("obtain coffer token", "auth", m.auth.String(), "err", err)
		m.fail(s, fmt.Errorf("obtain coffer token (%s): %w", m.auth, err))
		return
	}
	s.g, s.obtainedAt, s.retry = g, time.Now(), retryMin
	m.cur.Store(m.base.WithToken(g.token))
	m.setErr(nil)
	if g.ttl == unknownTTL {
		s.act, s.next = actLookup, time.Time{}
		return
	}
	m.logger.Info("obtained coffer token", "auth", m.auth.String(), "ttl", g.ttl, "renewable", g.renewable)
	s.act, s.next = m.schedule(g)
}

func (m *tokenManager) lookup(ctx context.Context, s *tokenState) {
	info, err := m.cur.Load().Auth().LookupSelf(ctx)
	m.metrics.tokenEvent("lookup", err)
	if err != nil {
		m.logger.Error("look up coffer token", "auth", m.auth.String(), "err", err)
		m.fail(s, fmt.Errorf("look up coffer token (%s): %w", m.auth, err))
		if _, file := m.auth.(watcher); !file && api.IsStatus(err, http.StatusForbidden) {
			s.act = actObtain // a login token was revoked: log in again
		}
		return
	}
	g := s.g
	g.ttl, g.renewable, g.at, g.initial = info.TTL, info.Renewable, time.Now(), info.TTL
	if info.CreationTTL > 0 {
		g.initial = info.CreationTTL // renewals ask for what the token was created with
	}
	s.retry = retryMin
	m.setErr(nil)
	m.logger.Info("coffer token", "auth", m.auth.String(), "ttl", g.ttl, "renewable", g.renewable, "policies", info.Policies)
	s.act, s.next = m.schedule(g)
}

func (m *tokenManager) renew(ctx context.Context, s *tokenState) {
	a, err := m.cur.Load().Auth().RenewSelf(ctx, s.g.initial)
	m.metrics.tokenEvent("renew", err)
	if err != nil {
		m.logger.Warn("renew coffer token failed: obtaining a new one", "auth", m.auth.String(), "err", err)
		s.act, s.next = actObtain, time.Time{}
		return
	}
	g := s.g
	g.ttl, g.renewable, g.at = time.Duration(a.LeaseDuration)*time.Second, a.Renewable, time.Now()
	m.logger.Debug("renewed coffer token", "ttl", g.ttl)
	s.act, s.next = m.schedule(g)
}

// schedule decides what to do next with g and when.
func (m *tokenManager) schedule(g *grant) (tokenAction, time.Time) {
	if g.ttl <= 0 {
		// Never expires; look it up now and then in case it was revoked
		// or the file changed (the poll catches that sooner).
		return actLookup, g.at.Add(idleRecheck)
	}
	at := g.at.Add(max(g.ttl*2/3, minWait)) // renew or replace at two thirds of the TTL
	// A renewable token whose renewals have shrunk to a third of what it
	// started with is near its max TTL: obtain a new one instead.
	if g.renewable && (g.initial == 0 || g.ttl*3 >= g.initial) {
		return actRenew, at
	}
	return actObtain, at
}
