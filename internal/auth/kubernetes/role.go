package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/param"
	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/storage"
)

// Alias name sources.
const (
	AliasSourceUID  = "serviceaccount_uid"
	AliasSourceName = "serviceaccount_name"
)

const rolePrefix = "role/"

// maxRoleName bounds a role name in bytes.
const maxRoleName = 128

// role binds service accounts to token parameters
// (auth/<mount>/role/<name>).
type role struct {
	Names             []string `json:"bound_service_account_names"`
	Namespaces        []string `json:"bound_service_account_namespaces,omitempty"`
	NamespaceSelector string   `json:"bound_service_account_namespace_selector,omitempty"`
	Audience          string   `json:"audience,omitempty"`
	AliasNameSource   string   `json:"alias_name_source,omitempty"`
	param.Token

	selector *labelSelector // parsed NamespaceSelector
}

// decodeRole applies a role write onto r (a stored role, or the zero
// role for a create) and validates the result. offline says whether the
// mount validates tokens offline, where namespace selectors cannot work.
func decodeRole(r *role, raw []byte, offline bool) error {
	b, err := param.Parse(raw)
	if err != nil {
		return err
	}
	b.Strings("bound_service_account_names", &r.Names)
	b.Strings("bound_service_account_namespaces", &r.Namespaces)
	b.String("bound_service_account_namespace_selector", &r.NamespaceSelector)
	b.String("audience", &r.Audience)
	b.String("alias_name_source", &r.AliasNameSource)
	r.Token.Decode(b)
	b.Ignore("name") // some clients repeat the name from the path
	if r.AliasNameSource == "" {
		r.AliasNameSource = AliasSourceUID
	}
	r.Audience = strings.TrimSpace(r.Audience)
	for _, e := range r.validate(offline) {
		b.Failf("%s", e)
	}
	return b.Err()
}

// validate reports every problem with r, and parses its selector.
func (r *role) validate(offline bool) []string {
	var errs []string
	if len(r.Names) == 0 {
		errs = append(errs, `"bound_service_account_names" can not be empty`)
	}
	if len(r.Names) > 1 && slices.Contains(r.Names, "*") {
		errs = append(errs, `bound_service_account_names: can not mix "*" with values`)
	}
	if len(r.Namespaces) > 1 && slices.Contains(r.Namespaces, "*") {
		errs = append(errs, `bound_service_account_namespaces: can not mix "*" with values`)
	}
	if len(r.Namespaces) == 0 && r.NamespaceSelector == "" {
		errs = append(errs, `"bound_service_account_namespaces" can not be empty if "bound_service_account_namespace_selector" is not set`)
	}
	if r.NamespaceSelector != "" {
		sel, err := parseSelector(r.NamespaceSelector)
		switch {
		case err != nil:
			errs = append(errs, "bound_service_account_namespace_selector: "+err.Error())
		case offline:
			errs = append(errs, `bound_service_account_namespace_selector: needs the namespace's labels from the Kubernetes API, `+
				`and this mount validates tokens offline (config validation "offline"); list the namespaces in bound_service_account_namespaces instead`)
		default:
			r.selector = sel
		}
	}
	switch r.AliasNameSource {
	case AliasSourceUID, AliasSourceName:
	default:
		errs = append(errs, fmt.Sprintf("alias_name_source %q: want %q or %q", r.AliasNameSource, AliasSourceUID, AliasSourceName))
	}
	return append(errs, r.Token.Validate()...)
}

// data is the role-read response, with Vault's defaults.
func (r *role) data() map[string]any {
	ns := r.Namespaces
	if ns == nil {
		ns = []string{}
	}
	d := map[string]any{
		"bound_service_account_names":              r.Names,
		"bound_service_account_namespaces":         ns,
		"bound_service_account_namespace_selector": r.NamespaceSelector,
		"audience":          r.Audience,
		"alias_name_source": r.AliasNameSource,
	}
	r.Token.Data(d)
	return d
}

// checkRoleName refuses names that cannot be stored or read back.
func checkRoleName(name string) error {
	if name == "" || len(name) > maxRoleName {
		return core.BadRequest("role name must be 1 to %d bytes", maxRoleName)
	}
	for _, c := range name {
		if unicode.IsControl(c) || c == '/' {
			return core.BadRequest("role name %q contains an invalid character", name)
		}
	}
	return nil
}

func loadRole(ctx context.Context, s storage.Backend, name string) (*role, error) {
	raw, err := s.Get(ctx, rolePrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: load role %q: %w", name, err)
	}
	r := &role{}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("kubernetes: decode role %q: %w", name, err)
	}
	if r.NamespaceSelector != "" {
		// Validated on write; a parse failure here means storage damage.
		if r.selector, err = parseSelector(r.NamespaceSelector); err != nil {
			return nil, fmt.Errorf("kubernetes: role %q: stored namespace selector: %w", name, err)
		}
	}
	return r, nil
}

func saveRole(ctx context.Context, s storage.Backend, name string, r *role) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, rolePrefix+name, raw); err != nil {
		return fmt.Errorf("kubernetes: save role %q: %w", name, err)
	}
	return nil
}

// anyGlob reports whether s matches one of patterns.
func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if jwtverify.Glob(p, s) {
			return true
		}
	}
	return false
}

func (b *Backend) roleExists(ctx context.Context, r *core.Request) (bool, error) {
	ro, err := loadRole(ctx, b.store, r.Params["name"])
	return ro != nil, err
}

func (b *Backend) roleRead(ctx context.Context, r *core.Request) (*core.Response, error) {
	ro, err := loadRole(ctx, b.store, r.Params["name"])
	if err != nil {
		return nil, err
	}
	if ro == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: ro.data()}, nil
}

func (b *Backend) roleWrite(ctx context.Context, r *core.Request) (*core.Response, error) {
	name := r.Params["name"]
	if err := checkRoleName(name); err != nil {
		return nil, err
	}
	cfg, err := loadConfig(ctx, b.store)
	if err != nil {
		return nil, err
	}
	offline := cfg != nil && cfg.Validation == ValidationOffline
	ro, err := loadRole(ctx, b.store, name)
	if err != nil {
		return nil, err
	}
	if ro == nil {
		ro = &role{}
	}
	if err := decodeRole(ro, r.Body, offline); err != nil {
		return nil, err
	}
	if err := saveRole(ctx, b.store, name, ro); err != nil {
		return nil, err
	}
	return nil, nil
}

func (b *Backend) roleDelete(ctx context.Context, r *core.Request) (*core.Response, error) {
	if err := b.store.Delete(ctx, rolePrefix+r.Params["name"]); err != nil {
		return nil, fmt.Errorf("kubernetes: delete role: %w", err)
	}
	return nil, nil
}

func (b *Backend) roleList(ctx context.Context, _ *core.Request) (*core.Response, error) {
	keys, err := b.store.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list roles: %w", err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/") })
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}
