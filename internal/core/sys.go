package core

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// sysBackend serves the sys/ mount.
type sysBackend struct{ c *Core }

func ops(pairs ...any) map[Operation]Handler {
	m := map[Operation]Handler{}
	for i := 0; i < len(pairs); i += 2 {
		switch h := pairs[i+1].(type) {
		case Handler:
			m[pairs[i].(Operation)] = h
		case func(context.Context, *Request) (*Response, error):
			m[pairs[i].(Operation)] = h
		default:
			panic("core: ops: not a handler")
		}
	}
	return m
}

// sealedRoutes answer without a token, also while sealed.
func (s *sysBackend) sealedRoutes() []Route {
	return []Route{
		{Pattern: "init", Unauthenticated: true, Handlers: ops(OpRead, s.initStatus, OpUpdate, s.initialize)},
		{Pattern: "seal-status", Unauthenticated: true, Handlers: ops(OpRead, s.sealStatus)},
		{Pattern: "unseal", Unauthenticated: true, Handlers: ops(OpUpdate, s.unseal)},
		{Pattern: "health", Unauthenticated: true, Handlers: ops(OpRead, s.health)},
		{Pattern: "leader", Unauthenticated: true, Handlers: ops(OpRead, s.leader)},
	}
}

// metricsRoute is sys/metrics: behind a token unless configured otherwise.
func (s *sysBackend) metricsRoute() Route {
	return Route{Pattern: "metrics", Unauthenticated: s.c.cfg.UnauthenticatedMetrics, Handlers: ops(OpRead, s.metrics)}
}

func (s *sysBackend) metrics(ctx context.Context, r *Request) (*Response, error) {
	if s.c.cfg.Metrics == nil {
		return nil, ErrUnsupportedPath
	}
	if f := r.Query.Get("format"); f != "" && f != "prometheus" {
		return nil, BadRequest("metrics format %q is not supported; use format=prometheus", f)
	}
	body, ct, err := s.c.cfg.Metrics()
	if err != nil {
		return nil, err
	}
	return &Response{RawBody: body, ContentType: ct}, nil
}

// Routes are the authenticated sys routes.
func (s *sysBackend) Routes() []Route {
	return []Route{
		{Pattern: "seal", Sudo: true, Handlers: ops(OpUpdate, s.seal)},
		{Pattern: "rotate", Sudo: true, Handlers: ops(OpUpdate, s.rotate)},
		{Pattern: "key-status", Handlers: ops(OpRead, s.keyStatus)},
		{Pattern: "mounts", Handlers: ops(OpRead, s.listMounts(tableMounts))},
		{Pattern: "mounts/{path...}", Handlers: ops(OpRead, s.readMount(tableMounts), OpCreate, s.mount(tableMounts), OpUpdate, s.mount(tableMounts), OpDelete, s.unmount(tableMounts))},
		{Pattern: "auth", Handlers: ops(OpRead, s.listMounts(tableAuth))},
		{Pattern: "auth/{path...}", Handlers: ops(OpRead, s.readMount(tableAuth), OpCreate, s.mount(tableAuth), OpUpdate, s.mount(tableAuth), OpDelete, s.unmount(tableAuth))},
		{Pattern: "internal/ui/mounts/{path...}", Handlers: ops(OpRead, s.uiMount)},
		{Pattern: "policies/acl", Handlers: ops(OpList, s.listPolicies, OpRead, s.listPolicies)},
		{Pattern: "policies/acl/{name}", Handlers: ops(OpRead, s.readPolicy, OpCreate, s.writePolicy, OpUpdate, s.writePolicy, OpDelete, s.deletePolicy)},
		{Pattern: "policy", Handlers: ops(OpRead, s.listPoliciesLegacy, OpList, s.listPoliciesLegacy)},
		{Pattern: "policy/{name}", Handlers: ops(OpRead, s.readPolicyLegacy, OpCreate, s.writePolicy, OpUpdate, s.writePolicy, OpDelete, s.deletePolicy)},
		{Pattern: "capabilities-self", Handlers: ops(OpUpdate, s.capabilitiesSelf)},
		{Pattern: "capabilities", Handlers: ops(OpUpdate, s.capabilities)},
		{Pattern: "capabilities-accessor", Handlers: ops(OpUpdate, s.capabilitiesAccessor)},
		s.metricsRoute(),
		{Pattern: "audit", Sudo: true, Handlers: ops(OpRead, s.listAudit)},
		{Pattern: "audit/{path...}", Sudo: true, Handlers: ops(OpCreate, s.enableAudit, OpUpdate, s.enableAudit, OpDelete, s.disableAudit)},
		{Pattern: "audit-hash/{path...}", Handlers: ops(OpCreate, s.auditHash, OpUpdate, s.auditHash)},
	}
}

func (s *sysBackend) initStatus(ctx context.Context, _ *Request) (*Response, error) {
	ok, err := s.c.Initialized(ctx)
	if err != nil {
		return nil, err
	}
	return &Response{Raw: map[string]bool{"initialized": ok}}, nil
}

func (s *sysBackend) initialize(ctx context.Context, r *Request) (*Response, error) {
	var in InitRequest
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	res, unsealKey, err := s.c.Initialize(ctx, in, "")
	clear(unsealKey)
	if err != nil {
		return nil, err
	}
	return &Response{Raw: res}, nil
}

func (s *sysBackend) sealStatus(ctx context.Context, _ *Request) (*Response, error) {
	st, err := s.c.SealStatus(ctx)
	if err != nil {
		return nil, err
	}
	return &Response{Raw: st}, nil
}

type unsealInput struct {
	Key     string `json:"key"`
	Reset   bool   `json:"reset"`
	Migrate bool   `json:"migrate"`
}

func (s *sysBackend) unseal(ctx context.Context, r *Request) (*Response, error) {
	var in unsealInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if !in.Reset && in.Key == "" {
		return nil, BadRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
	}
	st, err := s.c.Unseal(ctx, in.Key, in.Reset)
	if err != nil {
		return nil, err
	}
	return &Response{Raw: st}, nil
}

// HealthStatus is the body of sys/health.
type HealthStatus struct {
	Initialized                bool   `json:"initialized"`
	Sealed                     bool   `json:"sealed"`
	Standby                    bool   `json:"standby"`
	PerformanceStandby         bool   `json:"performance_standby"`
	ReplicationPerformanceMode string `json:"replication_performance_mode"`
	ReplicationDRMode          string `json:"replication_dr_mode"`
	ServerTimeUTC              int64  `json:"server_time_utc"`
	Version                    string `json:"version"`
	ClusterName                string `json:"cluster_name,omitempty"`
	ClusterID                  string `json:"cluster_id,omitempty"`
}

func (s *sysBackend) health(ctx context.Context, r *Request) (*Response, error) {
	init, err := s.c.Initialized(ctx)
	if err != nil {
		return nil, err
	}
	sealed := s.c.Sealed()
	h := &HealthStatus{Initialized: init, Sealed: sealed, Standby: sealed || !init,
		ReplicationPerformanceMode: "unknown", ReplicationDRMode: "unknown",
		ServerTimeUTC: s.c.now().Unix(), Version: s.c.cfg.Version}
	code := codeParam(r, "activecode", 200)
	switch {
	case !init:
		code = codeParam(r, "uninitcode", 501)
	case sealed:
		code = codeParam(r, "sealedcode", 503)
	default:
		h.ReplicationPerformanceMode, h.ReplicationDRMode = "disabled", "disabled"
		h.ClusterName, h.ClusterID = s.c.clusterName, s.c.clusterID
	}
	return &Response{Status: code, Raw: h}, nil
}

// codeParam reads a status-code override such as ?sealedcode=200.
func codeParam(r *Request, name string, def int) int {
	v := r.Query.Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 || n > 599 {
		return def
	}
	return n
}

func (s *sysBackend) leader(ctx context.Context, _ *Request) (*Response, error) {
	if s.c.Sealed() {
		return nil, ErrSealed
	}
	s.c.stateMu.RLock()
	since := s.c.activeSince
	s.c.stateMu.RUnlock()
	return &Response{Raw: map[string]any{
		"ha_enabled": false, "is_self": true, "active_time": since.Format(time.RFC3339Nano),
		"leader_address": s.c.cfg.APIAddr, "leader_cluster_address": "",
		"performance_standby": false, "performance_standby_last_remote_wal": 0,
	}}, nil
}

func (s *sysBackend) seal(ctx context.Context, r *Request) (*Response, error) {
	s.c.Seal()
	return nil, nil
}

func (s *sysBackend) rotate(ctx context.Context, r *Request) (*Response, error) {
	if err := s.c.Rotate(ctx); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *sysBackend) keyStatus(ctx context.Context, r *Request) (*Response, error) {
	info, err := s.c.barrier.KeyStatus()
	if err != nil {
		return nil, err
	}
	return &Response{Data: map[string]any{
		"term":         info.Term,
		"install_time": info.InstallTime.UTC().Format(time.RFC3339Nano),
		"encryptions":  info.Encryptions,
	}}, nil
}

// mountJSON is a mount table row as Vault renders it.
func mountJSON(e *MountEntry, version string) map[string]any {
	opts := any(nil)
	if len(e.Options) > 0 {
		opts = e.Options
	}
	return map[string]any{
		"accessor": e.Accessor,
		"config": map[string]any{
			"default_lease_ttl": e.Config.DefaultLeaseTTL,
			"max_lease_ttl":     e.Config.MaxLeaseTTL,
			"force_no_cache":    e.Config.ForceNoCache,
		},
		"deprecation_status":      "supported",
		"description":             e.Description,
		"external_entropy_access": false,
		"local":                   e.Local,
		"options":                 opts,
		"plugin_version":          "",
		"running_plugin_version":  "v" + version + "+builtin.coffer",
		"running_sha256":          "",
		"seal_wrap":               e.SealWrap,
		"type":                    e.Type,
		"uuid":                    e.UUID,
	}
}

func (s *sysBackend) listMounts(table string) Handler {
	return func(ctx context.Context, r *Request) (*Response, error) {
		data := map[string]any{}
		for _, e := range s.c.mounts.Load().entries(table) {
			data[e.Path] = mountJSON(e, s.c.cfg.Version)
		}
		return &Response{Data: data, TopLevel: data}, nil
	}
}

// mountPathParam splits "secret/tune" into ("secret", true).
func mountPathParam(r *Request) (string, bool) {
	p := strings.Trim(r.Params["path"], "/")
	if strings.HasSuffix(p, "/tune") {
		return strings.TrimSuffix(p, "/tune"), true
	}
	return p, false
}

func (s *sysBackend) findMount(table, path string) (*MountEntry, error) {
	p, err := validateMountPath(path)
	if err != nil {
		return nil, err
	}
	if table == tableAuth {
		p = "auth/" + p
	}
	m := s.c.mounts.Load().byPrefix[p]
	if m == nil {
		return nil, BadRequest("no mount at %q", p)
	}
	return m.entry, nil
}

func (s *sysBackend) readMount(table string) Handler {
	return func(ctx context.Context, r *Request) (*Response, error) {
		path, tune := mountPathParam(r)
		e, err := s.findMount(table, path)
		if err != nil {
			return nil, err
		}
		if tune {
			return &Response{Data: map[string]any{
				"default_lease_ttl": effective(e.Config.DefaultLeaseTTL, s.c.cfg.DefaultLeaseTTL),
				"max_lease_ttl":     effective(e.Config.MaxLeaseTTL, s.c.cfg.MaxLeaseTTL),
				"force_no_cache":    e.Config.ForceNoCache,
				"description":       e.Description,
				"options":           e.Options,
			}}, nil
		}
		return &Response{Data: mountJSON(e, s.c.cfg.Version)}, nil
	}
}

func effective(v int64, def time.Duration) int64 {
	if v > 0 {
		return v
	}
	return int64(def.Seconds())
}

func (s *sysBackend) mount(table string) Handler {
	return func(ctx context.Context, r *Request) (*Response, error) {
		path, tune := mountPathParam(r)
		if tune {
			var in TuneInput
			if err := r.Decode(&in); err != nil {
				return nil, err
			}
			e, err := s.findMount(table, path)
			if err != nil {
				return nil, err
			}
			return nil, s.c.Tune(ctx, e.routePrefix(), in)
		}
		var in MountInput
		if err := r.Decode(&in); err != nil {
			return nil, err
		}
		return nil, s.c.Mount(ctx, table, path, in)
	}
}

func (s *sysBackend) unmount(table string) Handler {
	return func(ctx context.Context, r *Request) (*Response, error) {
		path, tune := mountPathParam(r)
		if tune {
			return nil, ErrUnsupportedOperation
		}
		return nil, s.c.Unmount(ctx, table, path)
	}
}

// uiMount answers sys/internal/ui/mounts/<path>: the mount containing
// path. Vault Agent and the CLI use it to detect KV v2.
func (s *sysBackend) uiMount(ctx context.Context, r *Request) (*Response, error) {
	p := strings.TrimPrefix(r.Params["path"], "/")
	if p == "" {
		data := map[string]any{"secret": map[string]any{}, "auth": map[string]any{}}
		for _, e := range s.c.mounts.Load().entries(tableMounts) {
			data["secret"].(map[string]any)[e.Path] = mountJSON(e, s.c.cfg.Version)
		}
		for _, e := range s.c.mounts.Load().entries(tableAuth) {
			data["auth"].(map[string]any)[e.Path] = mountJSON(e, s.c.cfg.Version)
		}
		return &Response{Data: data}, nil
	}
	m := s.c.mounts.Load().find(p)
	if m == nil {
		return nil, &Error{Status: 400, Msg: "no mount found for path " + strconvQuote(p)}
	}
	d := mountJSON(m.entry, s.c.cfg.Version)
	d["path"] = m.entry.routePrefix()
	return &Response{Data: d}, nil
}

func strconvQuote(s string) string { return strconv.Quote(s) }
