package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

// Backend is a mounted secrets engine or auth method: a set of routes
// served on a storage view that belongs to the mount alone.
type Backend interface {
	Routes() []Route
}

// Runner is implemented by backends with background work (tidy loops,
// rotation). Run is started after unseal and its context is cancelled at
// seal or unmount; the core waits for it to return.
type Runner interface {
	Run(ctx context.Context) error
}

// BackendConfig is what a backend factory gets.
type BackendConfig struct {
	Storage   storage.Backend // a view scoped to this mount
	Logger    *slog.Logger
	MountPath string // "secret/"
	Accessor  string
	Options   map[string]string
	// System gives backends the few core services they may use.
	System System
}

// Factory builds a backend for one mount.
type Factory func(ctx context.Context, cfg BackendConfig) (Backend, error)

// System is the narrow view of the core that backends get.
type System interface {
	// MaxLeaseTTL and DefaultLeaseTTL are the mount's effective TTLs.
	DefaultLeaseTTL(mount string) time.Duration
	MaxLeaseTTL(mount string) time.Duration
}

// MountConfig is the tunable part of a mount.
type MountConfig struct {
	DefaultLeaseTTL int64 `json:"default_lease_ttl"`
	MaxLeaseTTL     int64 `json:"max_lease_ttl"`
	ForceNoCache    bool  `json:"force_no_cache"`
}

// MountEntry is one row of the mount or auth table.
type MountEntry struct {
	Table       string            `json:"table"` // "mounts" or "auth"
	Path        string            `json:"path"`  // "secret/" or "kubernetes/" (auth paths without the auth/ prefix)
	Type        string            `json:"type"`
	Description string            `json:"description"`
	UUID        string            `json:"uuid"`
	Accessor    string            `json:"accessor"`
	Config      MountConfig       `json:"config"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
	SealWrap    bool              `json:"seal_wrap"`
	CreatedAt   time.Time         `json:"created_at"`
}

// routePrefix is the request path prefix the mount answers on.
func (m *MountEntry) routePrefix() string {
	if m.Table == tableAuth {
		return "auth/" + m.Path
	}
	return m.Path
}

// storagePrefix is where the mount's data lives in the barrier.
func (m *MountEntry) storagePrefix() string {
	if m.Table == tableAuth {
		return "auth/" + m.UUID + "/"
	}
	return "logical/" + m.UUID + "/"
}

const (
	tableMounts = "mounts"
	tableAuth   = "auth"

	mountsKey = "core/mounts"
	authKey   = "core/auth"
)

// mounted is a live mount: its entry, its backend and its router.
type mounted struct {
	entry   *MountEntry
	backend Backend
	router  *router
	cancel  context.CancelFunc
	done    chan struct{}
}

// mountTable is an immutable snapshot; changes build a new one.
type mountTable struct {
	byPrefix map[string]*mounted // route prefix -> mount
	prefixes []string            // sorted longest first
}

func newMountTable(ms []*mounted) *mountTable {
	t := &mountTable{byPrefix: map[string]*mounted{}}
	for _, m := range ms {
		p := m.entry.routePrefix()
		t.byPrefix[p] = m
		t.prefixes = append(t.prefixes, p)
	}
	sort.Slice(t.prefixes, func(i, j int) bool {
		if len(t.prefixes[i]) != len(t.prefixes[j]) {
			return len(t.prefixes[i]) > len(t.prefixes[j])
		}
		return t.prefixes[i] < t.prefixes[j]
	})
	return t
}

// find returns the mount with the longest prefix of path.
func (t *mountTable) find(path string) *mounted {
	for _, p := range t.prefixes {
		if strings.HasPrefix(path, p) || path+"/" == p {
			return t.byPrefix[p]
		}
	}
	return nil
}

func (t *mountTable) entries(table string) []*MountEntry {
	var out []*MountEntry
	for _, m := range t.byPrefix {
		if m.entry.Table == table {
			out = append(out, m.entry)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// validateMountPath normalises and checks a user-supplied mount path.
func validateMountPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", BadRequest("mount path must not be empty")
	}
	if len(p) > 256 {
		return "", BadRequest("mount path is longer than 256 bytes")
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return "", BadRequest("mount path %q has an empty segment", p)
		case seg == "." || seg == "..":
			return "", BadRequest("mount path %q must not contain %q", p, seg)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f || r == '*' || r == '+' || r == '{' || r == '}' {
				return "", BadRequest("mount path %q contains the invalid character %q", p, r)
			}
		}
	}
	return p + "/", nil
}

// persisted form of a table
type tableFile struct {
	Entries []*MountEntry `json:"entries"`
}

func loadTable(ctx context.Context, s storage.Backend, key string) ([]*MountEntry, error) {
	raw, err := s.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", key, err)
	}
	var f tableFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return f.Entries, nil
}

func encodeTable(entries []*MountEntry) ([]byte, error) {
	return json.Marshal(tableFile{Entries: entries})
}
