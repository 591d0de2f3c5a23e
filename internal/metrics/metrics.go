// Package metrics is coffer's Prometheus instrumentation: request counts
// and latencies observed by the transport, and gauges read from the core
// at scrape time (seal state, token count, barrier key age, audit
// counters, secrets past their expiry or rotation date).
//
// Every series is prefixed coffer_. Labels carry mount paths, operations
// and status codes, never secret names or values.
package metrics

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// Snapshot is the state the core reports at scrape time.
type Snapshot struct {
	Sealed          bool
	Initialized     bool
	Tokens          int
	BarrierTerm     uint32
	TermInstalled   time.Time
	TermEncryptions uint64
	Mounts          []MountStats
	Audit           []AuditStats
}

// MountStats are per-mount counts from engines that keep them.
type MountStats struct {
	Mount        string
	Type         string
	Secrets      int
	Versions     int
	Expired      int
	PastRotation int
}

// AuditStats are per-device audit counters.
type AuditStats struct {
	Path    string
	Type    string
	Written uint64
	Failed  uint64
}

// Source returns a snapshot; the core implements it.
type Source func(ctx context.Context) Snapshot

// Metrics holds the registry and the transport's instruments.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the registry with Go runtime and process collectors and a
// collector that calls src at each scrape.
func New(src Source) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_requests_total", Help: "API requests by mount, operation and HTTP status code.",
		}, []string{"mount", "operation", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coffer_request_duration_seconds", Help: "API request latency by mount and operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"mount", "operation"}),
	}
	reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&snapshotCollector{src: src})
	return m
}

// ObserveRequest records one finished request.
func (m *Metrics) ObserveRequest(mount, op string, code int, d time.Duration) {
	if mount == "" {
		mount = "none"
	}
	m.requests.WithLabelValues(mount, op, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(mount, op).Observe(d.Seconds())
}

// Expose renders every metric in the Prometheus text format.
func (m *Metrics) Expose() ([]byte, string, error) {
	mfs, err := m.reg.Gather()
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, "", err
		}
	}
	return buf.Bytes(), string(format), nil
}

// Registry exposes the registry (tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var (
	descSealed     = prometheus.NewDesc("coffer_sealed", "1 when the server is sealed.", nil, nil)
	descInit       = prometheus.NewDesc("coffer_initialized", "1 when the server is initialised.", nil, nil)
	descTokens     = prometheus.NewDesc("coffer_tokens", "Live service tokens.", nil, nil)
	descTerm       = prometheus.NewDesc("coffer_barrier_key_term", "Active barrier keyring term.", nil, nil)
	descTermAge    = prometheus.NewDesc("coffer_barrier_key_age_seconds", "Age of the active barrier key term.", nil, nil)
	descTermEnc    = prometheus.NewDesc("coffer_barrier_key_encryptions", "Encryptions under the active barrier key term.", nil, nil)
	descSecrets    = prometheus.NewDesc("coffer_kv_secrets", "Secrets stored in a KV mount.", []string{"mount"}, nil)
	descVersions   = prometheus.NewDesc("coffer_kv_versions", "Versions with data in a KV mount.", []string{"mount"}, nil)
	descExpired    = prometheus.NewDesc("coffer_kv_versions_expired", "KV versions past their hard expiry.", []string{"mount"}, nil)
	descRotation   = prometheus.NewDesc("coffer_kv_secrets_past_rotation", "KV secrets past their rotation date.", []string{"mount"}, nil)
	descAuditOK    = prometheus.NewDesc("coffer_audit_records_written_total", "Audit records a device accepted.", []string{"path", "type"}, nil)
	descAuditFail  = prometheus.NewDesc("coffer_audit_records_failed_total", "Audit records a device failed to write.", []string{"path", "type"}, nil)
	snapshotDescs  = []*prometheus.Desc{descSealed, descInit, descTokens, descTerm, descTermAge, descTermEnc, descSecrets, descVersions, descExpired, descRotation, descAuditOK, descAuditFail}
	scrapeDeadline = 5 * time.Second
)

type snapshotCollector struct{ src Source }

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range snapshotDescs {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeDeadline)
	defer cancel()
	s := c.src(ctx)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descSealed, b2f(s.Sealed))
	gauge(descInit, b2f(s.Initialized))
	if s.Sealed {
		return
	}
	gauge(descTokens, float64(s.Tokens))
	gauge(descTerm, float64(s.BarrierTerm))
	if !s.TermInstalled.IsZero() {
		gauge(descTermAge, time.Since(s.TermInstalled).Seconds())
	}
	gauge(descTermEnc, float64(s.TermEncryptions))
	for _, m := range s.Mounts {
		gauge(descSecrets, float64(m.Secrets), m.Mount)
		gauge(descVersions, float64(m.Versions), m.Mount)
		gauge(descExpired, float64(m.Expired), m.Mount)
		gauge(descRotation, float64(m.PastRotation), m.Mount)
	}
	for _, a := range s.Audit {
		ch <- prometheus.MustNewConstMetric(descAuditOK, prometheus.CounterValue, float64(a.Written), a.Path, a.Type)
		ch <- prometheus.MustNewConstMetric(descAuditFail, prometheus.CounterValue, float64(a.Failed), a.Path, a.Type)
	}
}
