package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
	"github.com/cofferhq/coffer/internal/storage"
)

// Vault's limits on custom_metadata.
const (
	maxCustomMetadataKeys        = 64
	maxCustomMetadataKeyLength   = 128
	maxCustomMetadataValueLength = 512
	customMetadataPrefix         = "custom_metadata validation failed"
)

// metadataExists tells create from update for metadata writes: the key
// has a metadata record.
func (e *Engine) metadataExists(ctx context.Context, r *core.Request) (bool, error) {
	p := r.Params["path"]
	if validatePath(p) != nil {
		return false, nil
	}
	m, _, err := e.loadMeta(ctx, p)
	return m != nil, err
}

// metadataRead answers GET metadata/<path>.
func (e *Engine) metadataRead(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, err := pathParam(r)
	if err != nil {
		return nil, err
	}
	m, _, err := e.loadMeta(ctx, p)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: metadataInfo(m, e.reads.get(p), e.now().UTC())}, nil
}

// metaInput is the settable part of a metadata write or patch. A nil
// field was not sent.
type metaInput struct {
	maxVersions    *uint32
	casRequired    *bool
	dva            *time.Duration
	mcasRequired   *bool
	expireAfter    *time.Duration
	rotationPeriod *time.Duration
	// custom holds custom_metadata entries; in a patch a nil value removes
	// the entry. customSet says custom_metadata was sent; customNull that
	// it was null (a patch clears it).
	custom     map[string]*string
	customSet  bool
	customNull bool

	cas   int64 // metadata check-and-set (OpenBao), when casOK
	casOK bool
}

func (mi *metaInput) empty() bool {
	return mi.maxVersions == nil && mi.casRequired == nil && mi.dva == nil && mi.mcasRequired == nil &&
		mi.expireAfter == nil && mi.rotationPeriod == nil && !mi.customSet
}

// parseMetaInput reads the metadata fields. In a patch, a null field
// resets it to its default.
func parseMetaInput(in *field.Set, patch bool) (*metaInput, error) {
	mi := &metaInput{}
	null := func(name string) bool { return patch && in.Null(name) }
	if null("max_versions") {
		mi.maxVersions = new(uint32)
	} else if n, ok, err := in.Int("max_versions"); err != nil {
		return nil, err
	} else if ok {
		if err := checkMaxVersions(n); err != nil {
			return nil, err
		}
		v := uint32(n)
		mi.maxVersions = &v
	}
	for _, f := range []struct {
		name string
		dst  **bool
	}{{"cas_required", &mi.casRequired}, {"metadata_cas_required", &mi.mcasRequired}} {
		if null(f.name) {
			*f.dst = new(bool)
		} else if b, ok, err := in.Bool(f.name); err != nil {
			return nil, err
		} else if ok {
			*f.dst = &b
		}
	}
	for _, f := range []struct {
		name string
		dst  **time.Duration
	}{{"delete_version_after", &mi.dva}, {"expire_after", &mi.expireAfter}, {"rotation_period", &mi.rotationPeriod}} {
		if null(f.name) {
			*f.dst = new(time.Duration)
		} else if d, ok, err := in.Duration(f.name); err != nil {
			return nil, err
		} else if ok {
			if d < 0 {
				return nil, core.BadRequest("%s must not be negative, got %s (0 clears it)", f.name, d)
			}
			*f.dst = &d
		}
	}
	if null("custom_metadata") {
		mi.customSet, mi.customNull = true, true
	} else if err := mi.parseCustom(in, patch); err != nil {
		return nil, err
	}
	cas, ok, err := in.Int("cas")
	if err != nil {
		return nil, err
	}
	mi.cas, mi.casOK = cas, ok
	return mi, nil
}

// parseCustom reads custom_metadata, converting values to strings the way
// Vault's weak decoding does (numbers as written, booleans as "1"/"0").
func (mi *metaInput) parseCustom(in *field.Set, patch bool) error {
	obj, ok, err := in.Object("custom_metadata")
	if err != nil || !ok {
		return err
	}
	mi.customSet = true
	mi.custom = make(map[string]*string, len(obj))
	check := map[string]string{}
	for k, v := range obj {
		var s string
		switch v := v.(type) {
		case nil:
			if patch {
				mi.custom[k] = nil
				continue
			}
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = "0"
			if v {
				s = "1"
			}
		default:
			return core.BadRequest("%s: '' expected type 'string', got unconvertible type '%s' for key %s",
				customMetadataPrefix, goTypeName(v), field.Quote(k))
		}
		mi.custom[k] = &s
		check[k] = s
	}
	return validateCustomMetadata(check)
}

func goTypeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "map[string]interface {}"
	case []any:
		return "[]interface {}"
	}
	return fmt.Sprintf("%T", v)
}

// validateCustomMetadata applies Vault's limits and reports every problem,
// in Vault's multierror format.
func validateCustomMetadata(cm map[string]string) error {
	if n := len(cm); n > maxCustomMetadataKeys {
		return multiError([]string{fmt.Sprintf("%s: payload must contain at most %d keys, provided %d",
			customMetadataPrefix, maxCustomMetadataKeys, n)})
	}
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(cm)) {
		v := cm[k]
		if n := len(k); n == 0 || n > maxCustomMetadataKeyLength {
			errs = append(errs, fmt.Sprintf("%s: length of key %q is %d but must be 0 < len(key) <= %d",
				customMetadataPrefix, k, n, maxCustomMetadataKeyLength))
		}
		if n := len(v); n == 0 || n > maxCustomMetadataValueLength {
			errs = append(errs, fmt.Sprintf("%s: length of value for key %q is %d but must be 0 < len(value) <= %d",
				customMetadataPrefix, k, n, maxCustomMetadataValueLength))
		}
		if !printable(k) {
			errs = append(errs, fmt.Sprintf("%s: key %q contains unprintable characters", customMetadataPrefix, k))
		}
		if !printable(v) {
			errs = append(errs, fmt.Sprintf("%s: value for key %q contains unprintable characters", customMetadataPrefix, k))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return multiError(errs)
}

// multiError formats errors as hashicorp/go-multierror does, which is what
// Vault clients see.
func multiError(errs []string) error {
	noun := "errors"
	if len(errs) == 1 {
		noun = "error"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s occurred:\n", len(errs), noun)
	for _, e := range errs {
		fmt.Fprintf(&b, "\t* %s\n", e)
	}
	b.WriteString("\n")
	return core.BadRequest("%s", b.String())
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// apply writes mi into m. In a patch, custom_metadata merges.
func (mi *metaInput) apply(m *keyMeta, patch bool) error {
	if mi.maxVersions != nil {
		m.MaxVersions = *mi.maxVersions
	}
	if mi.casRequired != nil {
		m.CASRequired = *mi.casRequired
	}
	if mi.mcasRequired != nil {
		m.MetadataCASRequired = *mi.mcasRequired
	}
	if mi.dva != nil {
		m.DeleteVersionAfter = *mi.dva
	}
	if mi.expireAfter != nil {
		m.ExpireAfter = *mi.expireAfter
	}
	if mi.rotationPeriod != nil {
		m.RotationPeriod = *mi.rotationPeriod
	}
	if !mi.customSet {
		return nil
	}
	next := map[string]string{}
	if patch && !mi.customNull {
		for k, v := range m.CustomMetadata {
			next[k] = v
		}
	}
	for k, v := range mi.custom {
		if v == nil {
			delete(next, k)
		} else {
			next[k] = *v
		}
	}
	if patch {
		if err := validateCustomMetadata(next); err != nil {
			return err
		}
	}
	m.CustomMetadata = next
	if len(next) == 0 {
		m.CustomMetadata = nil
	}
	return nil
}

// checkMetadataCAS applies OpenBao's metadata check-and-set.
func checkMetadataCAS(required bool, mi *metaInput, current uint64) error {
	return checkCAS(required, mi.cas, mi.casOK, current)
}

// metadataWrite answers POST/PUT metadata/<path>: create or change a key's
// settings. It answers 204 (or 200 with warnings).
func (e *Engine) metadataWrite(ctx context.Context, r *core.Request) (*core.Response, error) {
	return e.writeMetadata(ctx, r, false)
}

// metadataPatch answers PATCH metadata/<path>: change the settings sent,
// merging custom_metadata (a null entry removes it). The key must exist.
func (e *Engine) metadataPatch(ctx context.Context, r *core.Request) (*core.Response, error) {
	return e.writeMetadata(ctx, r, true)
}

func (e *Engine) writeMetadata(ctx context.Context, r *core.Request, patch bool) (*core.Response, error) {
	p, err := pathParam(r)
	if err != nil {
		return nil, err
	}
	in, err := field.Decode(r)
	if err != nil {
		return nil, err
	}
	mi, err := parseMetaInput(in, patch)
	if err != nil {
		return nil, err
	}
	warnings := in.Warnings(r)
	if mi.empty() && !patch {
		return warningsOnly(warnings), nil
	}
	cfg, err := e.config(ctx)
	if err != nil {
		return nil, err
	}
	if mi.casRequired != nil && !*mi.casRequired && cfg.CASRequired {
		warnings = append(warnings, `"cas_required" set to false, but is mandated by backend config. This value will be ignored.`)
	}
	_, err = e.mutate(ctx, p, func(m *keyMeta, exists bool) (change, []storage.Op, error) {
		if patch && !exists {
			return keep, nil, core.ErrNotFound
		}
		if err := checkMetadataCAS(cfg.MetadataCASRequired || m.MetadataCASRequired, mi, m.MetadataVersion); err != nil {
			return keep, nil, err
		}
		if err := mi.apply(m, patch); err != nil {
			return keep, nil, err
		}
		m.MetadataVersion++
		m.UpdatedTime = e.now().UTC()
		return save, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return warningsOnly(warnings), nil
}

// metadataDelete answers DELETE metadata/<path>: every version's data and
// the metadata go, in one Txn. A missing key is not an error.
func (e *Engine) metadataDelete(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, err := pathParam(r)
	if err != nil {
		return nil, err
	}
	l := e.lock(p)
	l.Lock()
	defer l.Unlock()
	_, err = e.mutateLocked(ctx, p, func(m *keyMeta, exists bool) (change, []storage.Op, error) {
		if !exists {
			return keep, nil, nil
		}
		var ops []storage.Op
		for n, v := range m.Versions {
			if !v.Destroyed {
				ops = append(ops, storage.Delete(versionKey(p, n)))
			}
		}
		return remove, ops, nil
	})
	if err == nil {
		e.reads.forget(p)
	}
	return nil, err
}

// metadataList answers LIST metadata/<folder> (and the mount root) with
// the folder's keys, sub-folders ending in "/", sorted. OpenBao's paging:
// after=<key> starts after that key (which need not exist), limit=<n>
// caps the count. An empty answer is a 404, as in Vault.
func (e *Engine) metadataList(ctx context.Context, r *core.Request) (*core.Response, error) {
	prefix, err := folderPath(r.Params["path"])
	if err != nil {
		return nil, err
	}
	in, err := field.Decode(r)
	if err != nil {
		return nil, err
	}
	after, _, err := in.String("after")
	if err != nil {
		return nil, err
	}
	limit, _, err := in.Int("limit")
	if err != nil {
		return nil, err
	}
	keys, err := e.store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("kv: list: %w", err)
	}
	if after != "" {
		i, found := slices.BinarySearch(keys, after)
		if found {
			i++
		}
		keys = keys[i:]
	}
	if limit > 0 && int64(len(keys)) > limit {
		keys = keys[:limit]
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}
