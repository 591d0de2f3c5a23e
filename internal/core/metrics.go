package core

import (
	"context"

	"github.com/cofferhq/coffer/internal/metrics"
)

// mountStatser is implemented by engines that count what they store.
type mountStatser interface {
	MountStats(ctx context.Context) (map[string]int, error)
}

// MetricsSnapshot reports the state metrics read at scrape time. It takes
// the state lock for reading, like a request.
func (c *Core) MetricsSnapshot(ctx context.Context) metrics.Snapshot {
	init, _ := c.Initialized(ctx)
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	s := metrics.Snapshot{Sealed: c.sealed, Initialized: init}
	if c.sealed {
		return s
	}
	if n, err := c.tokens.Count(ctx); err == nil {
		s.Tokens = n
	}
	if k, err := c.barrier.KeyStatus(); err == nil {
		s.BarrierTerm, s.TermInstalled, s.TermEncryptions = k.Term, k.InstallTime, k.Encryptions
	}
	for prefix, m := range c.mounts.Load().byPrefix {
		st, ok := m.backend.(mountStatser)
		if !ok {
			continue
		}
		counts, err := st.MountStats(ctx)
		if err != nil {
			c.logger.Warn("metrics: mount stats failed", "mount", prefix, "error", err)
			continue
		}
		s.Mounts = append(s.Mounts, metrics.MountStats{Mount: prefix, Type: m.entry.Type,
			Secrets: counts["secrets"], Versions: counts["versions"], Expired: counts["expired"], PastRotation: counts["past_rotation"]})
	}
	s.Audit = c.auditStats()
	return s
}
