package core

import "github.com/cofferhq/coffer/internal/metrics"

func (c *Core) auditStats() []metrics.AuditStats { return nil }
