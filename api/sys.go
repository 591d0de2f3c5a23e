package api

import (
	"context"
	"net/http"
	"net/url"
)

// Logical reaches arbitrary paths (engines, auth methods).
type Logical struct{ c *Client }

// Logical returns the generic path client.
func (c *Client) Logical() *Logical { return &Logical{c: c} }

// Read GETs path. A 404 without data gives (nil, nil).
func (l *Logical) Read(ctx context.Context, path string, query url.Values) (*Secret, error) {
	var s Secret
	ok, err := l.c.do(ctx, http.MethodGet, path, query, nil, &s, true)
	if err != nil || !ok {
		return nil, err
	}
	return &s, nil
}

// Write PUTs data to path. A 204 gives (nil, nil).
func (l *Logical) Write(ctx context.Context, path string, data any) (*Secret, error) {
	var s Secret
	s.RequestID = "\x00"
	if _, err := l.c.do(ctx, http.MethodPut, path, nil, data, &s, false); err != nil {
		return nil, err
	}
	if s.RequestID == "\x00" {
		return nil, nil
	}
	return &s, nil
}

// Patch sends a JSON merge patch to path.
func (l *Logical) Patch(ctx context.Context, path string, data any) (*Secret, error) {
	status, raw, err := l.c.Raw(ctx, http.MethodPatch, path, nil, data, http.Header{"Content-Type": {"application/merge-patch+json"}})
	if err != nil {
		return nil, err
	}
	return decodeSecret(status, raw)
}

// List lists path (GET ?list=true). A 404 gives (nil, nil).
func (l *Logical) List(ctx context.Context, path string) (*Secret, error) {
	var s Secret
	ok, err := l.c.do(ctx, http.MethodGet, path, url.Values{"list": {"true"}}, nil, &s, true)
	if err != nil || !ok {
		return nil, err
	}
	return &s, nil
}

// Delete deletes path.
func (l *Logical) Delete(ctx context.Context, path string) error {
	_, err := l.c.do(ctx, http.MethodDelete, path, nil, nil, nil, true)
	return err
}

// Sys reaches the sys/ endpoints.
type Sys struct{ c *Client }

// Sys returns the sys/ client.
func (c *Client) Sys() *Sys { return &Sys{c: c} }

// InitRequest is the body of sys/init.
type InitRequest struct {
	SecretShares    int `json:"secret_shares"`
	SecretThreshold int `json:"secret_threshold"`
}

// InitResponse is the answer to sys/init.
type InitResponse struct {
	Keys       []string `json:"keys"`
	KeysBase64 []string `json:"keys_base64"`
	RootToken  string   `json:"root_token"`
}

// Init initialises the server.
func (s *Sys) Init(ctx context.Context, req InitRequest) (*InitResponse, error) {
	var out InitResponse
	_, err := s.c.do(ctx, http.MethodPut, "sys/init", nil, req, &out, false)
	return &out, err
}

// SealStatusResponse is sys/seal-status.
type SealStatusResponse struct {
	Type        string `json:"type"`
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	T           int    `json:"t"`
	N           int    `json:"n"`
	Progress    int    `json:"progress"`
	Nonce       string `json:"nonce"`
	Version     string `json:"version"`
	ClusterName string `json:"cluster_name,omitempty"`
	ClusterID   string `json:"cluster_id,omitempty"`
	StorageType string `json:"storage_type"`
}

// SealStatus reads the seal state.
func (s *Sys) SealStatus(ctx context.Context) (*SealStatusResponse, error) {
	var out SealStatusResponse
	_, err := s.c.do(ctx, http.MethodGet, "sys/seal-status", nil, nil, &out, false)
	return &out, err
}

// Unseal submits one key share.
func (s *Sys) Unseal(ctx context.Context, key string) (*SealStatusResponse, error) {
	var out SealStatusResponse
	_, err := s.c.do(ctx, http.MethodPut, "sys/unseal", nil, map[string]any{"key": key}, &out, false)
	return &out, err
}

// UnsealReset discards unseal progress.
func (s *Sys) UnsealReset(ctx context.Context) (*SealStatusResponse, error) {
	var out SealStatusResponse
	_, err := s.c.do(ctx, http.MethodPut, "sys/unseal", nil, map[string]any{"reset": true}, &out, false)
	return &out, err
}

// Seal seals the server (needs a root or sudo token).
func (s *Sys) Seal(ctx context.Context) error {
	_, err := s.c.do(ctx, http.MethodPut, "sys/seal", nil, nil, nil, false)
	return err
}

// HealthResponse is sys/health.
type HealthResponse struct {
	Initialized   bool   `json:"initialized"`
	Sealed        bool   `json:"sealed"`
	Standby       bool   `json:"standby"`
	ServerTimeUTC int64  `json:"server_time_utc"`
	Version       string `json:"version"`
	ClusterName   string `json:"cluster_name,omitempty"`
	ClusterID     string `json:"cluster_id,omitempty"`
}

// Health reads sys/health; any status code is accepted.
func (s *Sys) Health(ctx context.Context) (*HealthResponse, int, error) {
	status, raw, err := s.c.Raw(ctx, http.MethodGet, "sys/health", nil, nil, nil)
	if err != nil {
		return nil, 0, err
	}
	var out HealthResponse
	if err := jsonUnmarshal(raw, &out); err != nil {
		return nil, status, err
	}
	return &out, status, nil
}

// Rotate adds a barrier key term.
func (s *Sys) Rotate(ctx context.Context) error {
	_, err := s.c.do(ctx, http.MethodPut, "sys/rotate", nil, nil, nil, false)
	return err
}

// KeyStatus reads the active barrier key term.
func (s *Sys) KeyStatus(ctx context.Context) (*Secret, error) {
	var out Secret
	_, err := s.c.do(ctx, http.MethodGet, "sys/key-status", nil, nil, &out, false)
	return &out, err
}

// MountInput is the body for enabling a mount.
type MountInput struct {
	Type        string            `json:"type"`
	Description string            `json:"description,omitempty"`
	Options     map[string]string `json:"options,omitempty"`
	Config      map[string]any    `json:"config,omitempty"`
}

// Mount enables a secrets engine at path.
func (s *Sys) Mount(ctx context.Context, path string, in MountInput) error {
	_, err := s.c.do(ctx, http.MethodPost, "sys/mounts/"+path, nil, in, nil, false)
	return err
}

// Unmount disables the engine at path.
func (s *Sys) Unmount(ctx context.Context, path string) error {
	_, err := s.c.do(ctx, http.MethodDelete, "sys/mounts/"+path, nil, nil, nil, false)
	return err
}

// EnableAuth enables an auth method at path.
func (s *Sys) EnableAuth(ctx context.Context, path string, in MountInput) error {
	_, err := s.c.do(ctx, http.MethodPost, "sys/auth/"+path, nil, in, nil, false)
	return err
}

// DisableAuth disables the auth method at path.
func (s *Sys) DisableAuth(ctx context.Context, path string) error {
	_, err := s.c.do(ctx, http.MethodDelete, "sys/auth/"+path, nil, nil, nil, false)
	return err
}

// ListMounts returns the mount table (path -> mount).
func (s *Sys) ListMounts(ctx context.Context) (map[string]any, error) {
	var out Secret
	_, err := s.c.do(ctx, http.MethodGet, "sys/mounts", nil, nil, &out, false)
	return out.Data, err
}

// ListAuth returns the auth table.
func (s *Sys) ListAuth(ctx context.Context) (map[string]any, error) {
	var out Secret
	_, err := s.c.do(ctx, http.MethodGet, "sys/auth", nil, nil, &out, false)
	return out.Data, err
}
