package core

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/barrier"
	"github.com/cofferhq/coffer/internal/seal/shamir"
	"github.com/cofferhq/coffer/internal/storage"
)

// Physical keys the seal owns. They sit outside the barrier: the barrier
// cannot be opened before them.
const (
	sealConfigKey = "seal/config"   // plaintext JSON: shares, threshold, cluster id
	rootKeyKey    = "seal/root-key" // the root key, AES-256-GCM under the unseal key
)

// SealConfig is the seal's stored configuration. It holds no secret.
type SealConfig struct {
	Type            string    `json:"type"`
	SecretShares    int       `json:"secret_shares"`
	SecretThreshold int       `json:"secret_threshold"`
	ClusterID       string    `json:"cluster_id"`
	ClusterName     string    `json:"cluster_name"`
	InitTime        time.Time `json:"init_time"`
}

// unlockState is the unseal progress: shares collected so far.
type unlockState struct {
	parts [][]byte
	nonce string
}

func (u *unlockState) wipe() {
	for _, p := range u.parts {
		clear(p)
	}
	u.parts = nil
}

// InitRequest is the body of PUT sys/init.
type InitRequest struct {
	SecretShares      int      `json:"secret_shares"`
	SecretThreshold   int      `json:"secret_threshold"`
	PGPKeys           []string `json:"pgp_keys"`
	RecoveryShares    int      `json:"recovery_shares"`
	RecoveryThreshold int      `json:"recovery_threshold"`
	RecoveryPGPKeys   []string `json:"recovery_pgp_keys"`
	RootTokenPGPKey   string   `json:"root_token_pgp_key"`
	StoredShares      int      `json:"stored_shares"`
}

// Validate reports every problem with the request at once.
func (r *InitRequest) Validate() error {
	var errs []string
	switch {
	case r.SecretShares < 1:
		errs = append(errs, "secret_shares must be at least 1")
	case r.SecretShares > 255:
		errs = append(errs, "secret_shares must be at most 255")
	}
	switch {
	case r.SecretThreshold < 1:
		errs = append(errs, "secret_threshold must be at least 1")
	case r.SecretThreshold > r.SecretShares && r.SecretShares >= 1:
		errs = append(errs, "secret_threshold must not be greater than secret_shares")
	case r.SecretThreshold == 1 && r.SecretShares > 1:
		errs = append(errs, "secret_threshold must be greater than one for multiple shares")
	case r.SecretShares == 1 && r.SecretThreshold != 1:
		errs = append(errs, "secret_threshold must be 1 when secret_shares is 1")
	}
	if len(r.PGPKeys) > 0 || len(r.RecoveryPGPKeys) > 0 || r.RootTokenPGPKey != "" {
		errs = append(errs, "PGP-encrypted shares are not supported by coffer; omit pgp_keys and root_token_pgp_key")
	}
	if r.RecoveryShares > 0 || r.RecoveryThreshold > 0 {
		errs = append(errs, "recovery shares need an auto-unseal seal; the shamir seal takes secret_shares")
	}
	if len(errs) > 0 {
		return BadRequest("%s", strings.Join(errs, "; "))
	}
	return nil
}

// InitResult is the answer to PUT sys/init.
type InitResult struct {
	Keys       []string `json:"keys"`
	KeysBase64 []string `json:"keys_base64"`
	RootToken  string   `json:"root_token"`
}

// Initialized reports whether the server has been initialised.
func (c *Core) Initialized(ctx context.Context) (bool, error) {
	_, err := c.phys.Get(ctx, sealConfigKey)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (c *Core) sealConfig(ctx context.Context) (*SealConfig, error) {
	raw, err := c.phys.Get(ctx, sealConfigKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read seal config: %w", err)
	}
	var sc SealConfig
	if err := json.Unmarshal(raw, &sc); err != nil {
		return nil, fmt.Errorf("decode seal config: %w", err)
	}
	return &sc, nil
}

// Initialize sets up a new server: a root key, the barrier's keyring, an
// unseal key split into shares, and a root token. The server is left
// sealed. rootTokenID, when not empty, becomes the root token (dev mode).
// A crash part-way leaves no seal config, and the next Initialize starts
// over.
func (c *Core) Initialize(ctx context.Context, req InitRequest, rootTokenID string) (*InitResult, []byte, error) {
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	c.unlockMu.Lock()
	defer c.unlockMu.Unlock()
	if ok, err := c.Initialized(ctx); err != nil {
		return nil, nil, err
	} else if ok {
		return nil, nil, BadRequest("Vault is already initialized")
	}
	if err := c.wipePartialInit(ctx); err != nil {
		return nil, nil, err
	}
	unsealKey, err := barrier.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	rootKey, err := barrier.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	defer clear(rootKey)
	if err := c.barrier.Initialize(ctx, rootKey); err != nil {
		return nil, nil, fmt.Errorf("init: barrier: %w", err)
	}
	wrapped, err := wrapKey(unsealKey, rootKey, rootKeyKey)
	if err != nil {
		return nil, nil, err
	}
	if err := c.phys.Put(ctx, rootKeyKey, wrapped); err != nil {
		return nil, nil, fmt.Errorf("init: store root key: %w", err)
	}
	sc := &SealConfig{
		Type:            "shamir",
		SecretShares:    req.SecretShares,
		SecretThreshold: req.SecretThreshold,
		ClusterID:       NewUUID(),
		ClusterName:     c.cfg.ClusterName,
		InitTime:        c.now().UTC(),
	}
	if sc.ClusterName == "" {
		sc.ClusterName = "coffer-cluster-" + sc.ClusterID[:8]
	}
	// Unseal once to create the root token and the default mounts.
	c.stateMu.Lock()
	c.clusterID, c.clusterName = sc.ClusterID, sc.ClusterName
	err = c.unsealLocked(ctx, rootKey, true)
	var rootToken string
	if err == nil {
		rootToken, err = c.createRootToken(ctx, rootTokenID)
	}
	c.sealLocked()
	c.stateMu.Unlock()
	if err != nil {
		return nil, nil, fmt.Errorf("init: %w", err)
	}
	var shares [][]byte
	if req.SecretShares == 1 {
		shares = [][]byte{append([]byte(nil), unsealKey...)}
	} else {
		shares, err = shamir.Split(unsealKey, req.SecretShares, req.SecretThreshold)
		if err != nil {
			return nil, nil, fmt.Errorf("init: split unseal key: %w", err)
		}
	}
	raw, _ := json.Marshal(sc)
	// The seal config is written last: it is what marks the server
	// initialised.
	if err := c.phys.Put(ctx, sealConfigKey, raw); err != nil {
		return nil, nil, fmt.Errorf("init: store seal config: %w", err)
	}
	res := &InitResult{RootToken: rootToken}
	for _, s := range shares {
		res.Keys = append(res.Keys, hex.EncodeToString(s))
		res.KeysBase64 = append(res.KeysBase64, base64.StdEncoding.EncodeToString(s))
		clear(s)
	}
	c.logger.Info("initialized", "shares", sc.SecretShares, "threshold", sc.SecretThreshold, "cluster_id", sc.ClusterID)
	return res, unsealKey, nil
}

// wipePartialInit removes what an interrupted Initialize left behind.
func (c *Core) wipePartialInit(ctx context.Context) error {
	for _, prefix := range []string{"barrier/", "v/", "seal/"} {
		if err := deleteTree(ctx, c.phys, prefix); err != nil {
			return fmt.Errorf("init: clear an interrupted initialisation: %w", err)
		}
	}
	return nil
}

func deleteTree(ctx context.Context, s storage.Backend, prefix string) error {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			if err := deleteTree(ctx, s, prefix+k); err != nil {
				return err
			}
			continue
		}
		if err := s.Delete(ctx, prefix+k); err != nil {
			return err
		}
	}
	return nil
}

// SealStatus is the body of sys/seal-status and sys/unseal.
type SealStatus struct {
	Type         string `json:"type"`
	Initialized  bool   `json:"initialized"`
	Sealed       bool   `json:"sealed"`
	T            int    `json:"t"`
	N            int    `json:"n"`
	Progress     int    `json:"progress"`
	Nonce        string `json:"nonce"`
	Version      string `json:"version"`
	BuildDate    string `json:"build_date"`
	Migration    bool   `json:"migration"`
	ClusterName  string `json:"cluster_name,omitempty"`
	ClusterID    string `json:"cluster_id,omitempty"`
	RecoverySeal bool   `json:"recovery_seal"`
	StorageType  string `json:"storage_type"`
}

// SealStatus reports the seal state and unseal progress.
func (c *Core) SealStatus(ctx context.Context) (*SealStatus, error) {
	c.unlockMu.Lock()
	defer c.unlockMu.Unlock()
	return c.sealStatusLocked(ctx)
}

func (c *Core) sealStatusLocked(ctx context.Context) (*SealStatus, error) {
	st := &SealStatus{Type: "shamir", Sealed: c.Sealed(), Version: c.cfg.Version, StorageType: c.cfg.StorageType}
	sc, err := c.sealConfig(ctx)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return st, nil
	}
	st.Initialized, st.T, st.N = true, sc.SecretThreshold, sc.SecretShares
	if c.unlock != nil {
		st.Progress, st.Nonce = len(c.unlock.parts), c.unlock.nonce
	}
	if !st.Sealed {
		st.ClusterName, st.ClusterID = sc.ClusterName, sc.ClusterID
	}
	return st, nil
}

// ParseShare decodes an unseal share given as hex or base64.
func ParseShare(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, BadRequest("invalid key: no key provided; pass one unseal key share as hex or base64")
	}
	var b []byte
	if h, err := hex.DecodeString(s); err == nil {
		b = h
	} else if d, err := base64.StdEncoding.DecodeString(s); err == nil {
		b = d
	} else {
		return nil, BadRequest("invalid key: the key is neither hex nor base64")
	}
	switch {
	case len(b) < 16:
		return nil, BadRequest("invalid key: key is shorter than minimum 16 bytes")
	case len(b) > 33:
		return nil, BadRequest("invalid key: key is longer than maximum 33 bytes")
	}
	return b, nil
}

// Unseal adds one share. With reset, the progress is discarded. When the
// threshold is reached the shares are combined and the barrier opened.
func (c *Core) Unseal(ctx context.Context, key string, reset bool) (*SealStatus, error) {
	c.unlockMu.Lock()
	defer c.unlockMu.Unlock()
	sc, err := c.sealConfig(ctx)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, BadRequest("Vault is not initialized")
	}
	if reset {
		if c.unlock != nil {
			c.unlock.wipe()
		}
		c.unlock = nil
		return c.sealStatusLocked(ctx)
	}
	if !c.Sealed() {
		return c.sealStatusLocked(ctx)
	}
	share, err := ParseShare(key)
	if err != nil {
		return nil, err
	}
	if c.unlock == nil {
		c.unlock = &unlockState{nonce: NewUUID()}
	}
	for _, p := range c.unlock.parts {
		if subtle.ConstantTimeCompare(p, share) == 1 {
			clear(share)
			return nil, BadRequest("invalid key: this key share was already provided (progress %d of %d); provide a different share", len(c.unlock.parts), sc.SecretThreshold)
		}
	}
	if len(c.unlock.parts) > 0 && len(c.unlock.parts[0]) != len(share) {
		clear(share)
		return nil, BadRequest("invalid key: share length %d does not match the previous shares (%d bytes)", len(share), len(c.unlock.parts[0]))
	}
	c.unlock.parts = append(c.unlock.parts, share)
	if len(c.unlock.parts) < sc.SecretThreshold {
		return c.sealStatusLocked(ctx)
	}
	var unsealKey []byte
	if sc.SecretShares == 1 {
		unsealKey = append([]byte(nil), c.unlock.parts[0]...)
	} else {
		unsealKey, err = shamir.Combine(c.unlock.parts)
	}
	c.unlock.wipe()
	c.unlock = nil
	if err != nil {
		return nil, BadRequest("invalid key: could not combine the shares (%v); unseal progress was reset", err)
	}
	defer clear(unsealKey)
	if err := c.UnsealWithKey(ctx, unsealKey); err != nil {
		return nil, err
	}
	return c.sealStatusLocked(ctx)
}

// UnsealWithKey opens the root key with the combined unseal key and
// unseals the barrier.
func (c *Core) UnsealWithKey(ctx context.Context, unsealKey []byte) error {
	wrapped, err := c.phys.Get(ctx, rootKeyKey)
	if err != nil {
		return fmt.Errorf("unseal: read root key: %w", err)
	}
	rootKey, err := unwrapKey(unsealKey, wrapped, rootKeyKey)
	if err != nil {
		return BadRequest("invalid key: the shares do not open this server's root key (a share from another initialisation?); unseal progress was reset")
	}
	defer clear(rootKey)
	sc, err := c.sealConfig(ctx)
	if err != nil {
		return err
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if !c.sealed {
		return nil
	}
	if sc != nil {
		c.clusterID, c.clusterName = sc.ClusterID, sc.ClusterName
	}
	if err := c.unsealLocked(ctx, rootKey, false); err != nil {
		return err
	}
	c.logger.Info("unsealed", "cluster_id", c.clusterID)
	return nil
}

// Seal zeroes every key in memory, stops background work and waits for
// in-flight requests to finish.
func (c *Core) Seal() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.sealed {
		return
	}
	c.sealLocked()
	c.logger.Info("sealed")
}

func wrapKey(kek, key []byte, aad string) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, key, []byte(aad)), nil
}

func unwrapKey(kek, wrapped []byte, aad string) ([]byte, error) {
	if len(kek) != 32 {
		return nil, errors.New("unseal key has the wrong length")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < g.NonceSize() {
		return nil, errors.New("stored root key is truncated")
	}
	return g.Open(nil, wrapped[:g.NonceSize()], wrapped[g.NonceSize():], []byte(aad))
}
