package core

import (
	"context"
	"fmt"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/token"
)

// cacheBytes bounds each read cache the core puts in front of a storage
// view that only one subsystem writes (the token store, each mount).
const cacheBytes = 16 << 20

// unsealLocked opens the barrier and brings up everything that lives
// behind it. The caller holds stateMu for writing.
func (c *Core) unsealLocked(ctx context.Context, rootKey []byte, initializing bool) error {
	if err := c.barrier.Unseal(ctx, rootKey); err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			c.barrier.Seal()
		}
	}()
	ts, err := token.New(ctx, storage.NewCache(storage.NewView(c.barrier, "sys/token/"), cacheBytes), token.Options{
		Logger:     c.logger.With("subsystem", "token"),
		Now:        c.now,
		DefaultTTL: c.cfg.DefaultLeaseTTL,
		MaxTTL:     c.cfg.MaxLeaseTTL,
	})
	if err != nil {
		return fmt.Errorf("unseal: token store: %w", err)
	}
	c.tokens = ts
	c.policies = newPolicyStore(storage.NewView(c.barrier, "sys/policy/"))
	if initializing {
		if err := c.policies.ensureDefault(ctx); err != nil {
			return fmt.Errorf("unseal: default policy: %w", err)
		}
	}
	if !initializing {
		if err := c.setupAudit(ctx); err != nil {
			return fmt.Errorf("unseal: audit devices: %w", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := c.setupMounts(ctx, runCtx, initializing); err != nil {
		cancel()
		return fmt.Errorf("unseal: mounts: %w", err)
	}
	c.runStop, c.runCtx = cancel, runCtx
	c.sealed = false
	c.activeSince = c.now().UTC()
	ok = true
	if initializing {
		return nil
	}
	c.goRun(runCtx, "token tidy", c.tokens.Run)
	if c.barrier.NeedsReencrypt() {
		c.startReencrypt()
	}
	return nil
}

// goRun starts a background task owned by the unsealed core; seal waits for it.
func (c *Core) goRun(ctx context.Context, name string, fn func(context.Context) error) {
	c.runWG.Add(1)
	go func() {
		defer c.runWG.Done()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			c.logger.Error("background task failed", "task", name, "error", err)
		}
	}()
}

func (c *Core) reencrypt(ctx context.Context) error {
	start := time.Now()
	n, err := c.barrier.Reencrypt(ctx)
	if err != nil {
		return err
	}
	c.logger.Info("barrier re-encryption done", "rewritten", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// sealLocked stops background work, drops everything derived from the
// root key and zeroes the keys. The caller holds stateMu for writing.
func (c *Core) sealLocked() {
	if c.runStop != nil {
		c.runStop()
	}
	c.runWG.Wait()
	if mt := c.mounts.Load(); mt != nil {
		for _, m := range mt.byPrefix {
			if m.cancel != nil {
				m.cancel()
				<-m.done
			}
		}
	}
	c.runStop, c.runCtx = nil, nil
	c.teardownAudit()
	c.tokens = nil
	c.policies = nil
	c.mounts.Store(nil)
	c.barrier.Seal()
	c.sealed = true
}

// createRootToken makes a root token (during init or dev start).
func (c *Core) createRootToken(ctx context.Context, id string) (string, error) {
	tok, _, err := c.tokens.Create(ctx, token.CreateRequest{
		ID:          id,
		Policies:    []string{"root"},
		DisplayName: "root",
		Path:        "auth/token/root",
		NoParent:    true,
	})
	if err != nil {
		return "", fmt.Errorf("create root token: %w", err)
	}
	return tok, nil
}

// Rotate adds a barrier keyring term and starts re-encrypting older entries.
func (c *Core) Rotate(ctx context.Context) error {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	if c.sealed {
		return ErrSealed
	}
	info, err := c.barrier.Rotate(ctx)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	c.logger.Info("barrier key rotated", "term", info.Term)
	// The runStop context is alive while unsealed; the pass stops at seal.
	c.startReencrypt()
	return nil
}

func (c *Core) startReencrypt() {
	if c.runStop == nil {
		return
	}
	c.reencryptMu.Lock()
	defer c.reencryptMu.Unlock()
	if c.reencryptRunning {
		c.reencryptAgain = true
		return
	}
	c.reencryptRunning = true
	ctx := c.runCtx
	c.goRun(ctx, "barrier re-encryption", func(ctx context.Context) error {
		for {
			err := c.reencrypt(ctx)
			c.reencryptMu.Lock()
			if !c.reencryptAgain || err != nil || ctx.Err() != nil {
				c.reencryptRunning = false
				c.reencryptMu.Unlock()
				return err
			}
			c.reencryptAgain = false
			c.reencryptMu.Unlock()
		}
	})
}
