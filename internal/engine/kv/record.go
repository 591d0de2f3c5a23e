package kv

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// defaultMaxVersions is kept when neither the key nor the engine config
// sets max_versions, as in Vault.
const defaultMaxVersions = 10

// dvaDisabled is the engine-config delete_version_after that turns the
// feature off for every key (a negative value on write), as in OpenBao.
const dvaDisabled = -1 * time.Second

// engineConfig is the mount-wide configuration at "config".
type engineConfig struct {
	MaxVersions         uint32        `json:"max_versions,omitempty"`
	CASRequired         bool          `json:"cas_required,omitempty"`
	MetadataCASRequired bool          `json:"metadata_cas_required,omitempty"`
	DeleteVersionAfter  time.Duration `json:"delete_version_after,omitempty"`
}

// keyMeta is the metadata record of one secret path, stored at
// meta/<path>. It is the only record a version write reads, and it is
// rewritten in the same storage Txn as every version it describes.
type keyMeta struct {
	CreatedTime    time.Time `json:"created_time"`
	UpdatedTime    time.Time `json:"updated_time"`
	CurrentVersion uint64    `json:"current_version"`
	OldestVersion  uint64    `json:"oldest_version"`

	MaxVersions        uint32            `json:"max_versions,omitempty"`
	CASRequired        bool              `json:"cas_required,omitempty"`
	DeleteVersionAfter time.Duration     `json:"delete_version_after,omitempty"`
	CustomMetadata     map[string]string `json:"custom_metadata,omitempty"`

	// MetadataVersion counts metadata writes (OpenBao's
	// current_metadata_version, checked by a metadata write's "cas").
	MetadataVersion     uint64 `json:"metadata_version,omitempty"`
	MetadataCASRequired bool   `json:"metadata_cas_required,omitempty"`

	// coffer additions.
	ExpireAfter    time.Duration `json:"expire_after,omitempty"`
	RotationPeriod time.Duration `json:"rotation_period,omitempty"`

	Versions map[uint64]*versionMeta `json:"versions"`
}

// versionMeta describes one version.
type versionMeta struct {
	CreatedTime time.Time `json:"created_time"`
	// DeletionTime is when the version is (or was) soft-deleted. A time in
	// the future is a delete_version_after deadline: the version is live
	// until then.
	DeletionTime time.Time `json:"deletion_time,omitzero"`
	Destroyed    bool      `json:"destroyed,omitempty"`
	// ExpiresAt is the hard expiry (coffer): from then on the version
	// reads as destroyed, and the background pass destroys its data.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// LastRead is the last data read of the version, as of the last flush.
	LastRead time.Time `json:"last_read,omitzero"`
}

func newKeyMeta(now time.Time) *keyMeta {
	return &keyMeta{CreatedTime: now, UpdatedTime: now, Versions: map[uint64]*versionMeta{}}
}

func decodeKeyMeta(raw []byte) (*keyMeta, error) {
	m := &keyMeta{}
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("decode key metadata: %w", err)
	}
	if m.Versions == nil {
		m.Versions = map[uint64]*versionMeta{}
	}
	return m, nil
}

func (m *keyMeta) encode() []byte {
	raw, err := json.Marshal(m)
	if err != nil {
		// keyMeta holds only plain values; Marshal cannot fail on it.
		panic(fmt.Sprintf("kv: encode key metadata: %v", err))
	}
	return raw
}

// The states of a version at a moment.

// deleted: soft-deleted, or past its delete_version_after deadline.
func (v *versionMeta) deleted(now time.Time) bool {
	return !v.DeletionTime.IsZero() && !now.Before(v.DeletionTime)
}

// expired: past its hard expiry.
func (v *versionMeta) expired(now time.Time) bool {
	return !v.ExpiresAt.IsZero() && !now.Before(v.ExpiresAt)
}

// gone: the data can never be read again (destroyed or expired).
func (v *versionMeta) gone(now time.Time) bool { return v.Destroyed || v.expired(now) }

// live: the data can be read now.
func (v *versionMeta) live(now time.Time) bool { return !v.gone(now) && !v.deleted(now) }

// current returns the current version's metadata, or nil.
func (m *keyMeta) current() *versionMeta { return m.Versions[m.CurrentVersion] }

// deletionDeadline is created plus the smaller non-zero of the engine's
// and the key's delete_version_after (OpenBao's rule); ok is false when
// neither applies or the engine config disables the feature.
func deletionDeadline(from time.Time, cfg *engineConfig, m *keyMeta) (time.Time, bool) {
	mount, key := cfg.DeleteVersionAfter, m.DeleteVersionAfter
	if mount == dvaDisabled || mount < 0 {
		return time.Time{}, false
	}
	var d time.Duration
	switch {
	case mount == 0 && key == 0:
		return time.Time{}, false
	case key == 0:
		d = mount
	case mount == 0:
		d = key
	default:
		d = min(mount, key)
	}
	return from.Add(d), true
}

// maxVersions is the key's limit if set, else the engine's, else 10.
func (m *keyMeta) maxVersions(cfg *engineConfig) uint64 {
	switch {
	case m.MaxVersions > 0:
		return uint64(m.MaxVersions)
	case cfg.MaxVersions > 0:
		return uint64(cfg.MaxVersions)
	}
	return defaultMaxVersions
}

// addVersion appends a new current version and prunes the oldest ones
// beyond the key's limit. It returns the new version's metadata and the
// pruned version numbers whose data must be deleted.
func (m *keyMeta) addVersion(now time.Time, cfg *engineConfig) (*versionMeta, []uint64) {
	vm := &versionMeta{CreatedTime: now}
	if dt, ok := deletionDeadline(now, cfg, m); ok {
		vm.DeletionTime = dt
	}
	if m.ExpireAfter > 0 {
		vm.ExpiresAt = now.Add(m.ExpireAfter)
	}
	m.CurrentVersion++
	m.Versions[m.CurrentVersion] = vm
	m.UpdatedTime = now
	if m.CreatedTime.IsZero() {
		m.CreatedTime = now
	}

	limit := m.maxVersions(cfg)
	if m.CurrentVersion-m.OldestVersion < limit {
		return vm, nil
	}
	last := m.CurrentVersion - limit // prune every version up to this one
	var pruned []uint64
	for n, v := range m.Versions {
		if n <= last {
			if !v.Destroyed {
				pruned = append(pruned, n)
			}
			delete(m.Versions, n)
		}
	}
	m.OldestVersion = last + 1
	return vm, pruned
}

// nextRotation is when the current version is due for rotation.
func (m *keyMeta) nextRotation() (time.Time, bool) {
	cur := m.current()
	if m.RotationPeriod <= 0 || cur == nil {
		return time.Time{}, false
	}
	return cur.CreatedTime.Add(m.RotationPeriod), true
}

// Wire shapes.

// ts formats a time as Vault does (RFC 3339 with nanoseconds, UTC), or ""
// for the zero time.
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// customMetadata is the key's custom_metadata, nil (JSON null) when unset.
func (m *keyMeta) customMetadata() map[string]string {
	if len(m.CustomMetadata) == 0 {
		return nil
	}
	return m.CustomMetadata
}

// versionInfo is a version's metadata as data writes return it and data
// reads nest it under "metadata". An expired version reads as destroyed.
func versionInfo(m *keyMeta, n uint64, v *versionMeta, now time.Time) map[string]any {
	out := map[string]any{
		"created_time":    ts(v.CreatedTime),
		"custom_metadata": m.customMetadata(),
		"deletion_time":   ts(v.DeletionTime),
		"destroyed":       v.gone(now),
		"version":         n,
	}
	if !v.ExpiresAt.IsZero() {
		out["expires_at"] = ts(v.ExpiresAt)
	}
	return out
}

// metadataInfo is the metadata read's data. lastRead overlays read times
// not yet flushed to storage.
func metadataInfo(m *keyMeta, lastRead map[uint64]time.Time, now time.Time) map[string]any {
	versions := make(map[string]any, len(m.Versions))
	for n, v := range m.Versions {
		read := v.LastRead
		if t, ok := lastRead[n]; ok && t.After(read) {
			read = t
		}
		versions[strconv.FormatUint(n, 10)] = map[string]any{
			"created_time":  ts(v.CreatedTime),
			"deletion_time": ts(v.DeletionTime),
			"destroyed":     v.gone(now),
			"expires_at":    ts(v.ExpiresAt),
			"last_read":     ts(read),
		}
	}
	next, _ := m.nextRotation()
	return map[string]any{
		"cas_required":             m.CASRequired,
		"created_time":             ts(m.CreatedTime),
		"current_metadata_version": m.MetadataVersion,
		"current_version":          m.CurrentVersion,
		"custom_metadata":          m.customMetadata(),
		"delete_version_after":     m.DeleteVersionAfter.String(),
		"max_versions":             m.MaxVersions,
		"metadata_cas_required":    m.MetadataCASRequired,
		"oldest_version":           m.OldestVersion,
		"updated_time":             ts(m.UpdatedTime),
		"versions":                 versions,
		// coffer additions
		"expire_after":    m.ExpireAfter.String(),
		"rotation_period": m.RotationPeriod.String(),
		"next_rotation":   ts(next),
	}
}
