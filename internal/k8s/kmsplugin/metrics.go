package kmsplugin

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/status"
)

// metrics are the plugin's Prometheus series, prefixed coffer_kms_. Labels
// carry gRPC methods, outcomes (gRPC codes) and error kinds, never key
// material. A nil *metrics records nothing.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
	cofferErrors *prometheus.CounterVec
	tokenEvents  *prometheus.CounterVec
	tokenExpires prometheus.Gauge
	healthy      prometheus.Gauge
	keyVersion   prometheus.Gauge
	batchSize    *prometheus.HistogramVec
	keks         prometheus.Counter
}

func newMetrics(cacheLen func() int) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_kms_requests_total", Help: "KMS gRPC requests by method and outcome (gRPC code).",
		}, []string{"method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coffer_kms_request_duration_seconds", Help: "KMS gRPC request latency by method and outcome.",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "outcome"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coffer_kms_dek_cache_hits_total", Help: "Decrypt requests answered without coffer (a cached data key or key encryption key).",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coffer_kms_dek_cache_misses_total", Help: "Decrypt requests that had to ask coffer (to unwrap a key encryption key or a data key).",
		}),
		cofferErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_kms_coffer_errors_total", Help: "Failed calls to coffer by operation and kind.",
		}, []string{"operation", "kind"}),
		tokenEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_kms_token_operations_total", Help: "Token obtain (login or file read), lookup and renew calls by result.",
		}, []string{"operation", "result"}),
		tokenExpires: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "coffer_kms_token_expiry_timestamp_seconds", Help: "When the current coffer token expires (0: never or unknown).",
		}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "coffer_kms_healthy", Help: "1 when the last encrypt/decrypt round trip through coffer worked.",
		}),
		keyVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "coffer_kms_key_version", Help: "Latest transit key version seen (part of the reported key id).",
		}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coffer_kms_coffer_batch_size", Help: "Decrypt calls sent to coffer in one transit request (coalesced), by operation.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}, []string{"operation"}),
		keks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coffer_kms_keks_created_total", Help: "Local key encryption keys made (each wrapped by one transit encrypt).",
		}),
	}
	m.reg.MustRegister(m.keks, m.batchSize, m.requests, m.latency, m.cacheHits, m.cacheMisses, m.cofferErrors, m.tokenEvents,
		m.tokenExpires, m.healthy, m.keyVersion,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "coffer_kms_dek_cache_entries", Help: "Data keys and key encryption keys held in the cache.",
		}, func() float64 { return float64(cacheLen()) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// request records one gRPC call; err is nil or carries a gRPC status.
func (m *metrics) request(method string, start time.Time, err error) {
	if m == nil {
		return
	}
	outcome := status.Code(err).String()
	m.requests.WithLabelValues(method, outcome).Inc()
	m.latency.WithLabelValues(method, outcome).Observe(time.Since(start).Seconds())
}

// batch records the size of one transit encrypt or decrypt request.
func (m *metrics) batch(op string, n int) {
	if m == nil {
		return
	}
	m.batchSize.WithLabelValues(op).Observe(float64(n))
}

func (m *metrics) kekCreated() {
	if m == nil {
		return
	}
	m.keks.Inc()
}

func (m *metrics) cache(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheHits.Inc()
	} else {
		m.cacheMisses.Inc()
	}
}

func (m *metrics) cofferError(err error) {
	var ce *CofferError
	if m == nil || !errors.As(err, &ce) {
		return
	}
	m.cofferErrors.WithLabelValues(ce.Op, ce.kind.String()).Inc()
}

func (m *metrics) tokenEvent(op string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.tokenEvents.WithLabelValues(op, result).Inc()
}

func (m *metrics) tokenExpiry(g *grant) {
	if m == nil {
		return
	}
	if g == nil || g.ttl <= 0 {
		m.tokenExpires.Set(0)
		return
	}
	m.tokenExpires.Set(float64(g.at.Add(g.ttl).Unix()))
}

func (m *metrics) health(ok bool, version int) {
	if m == nil {
		return
	}
	if ok {
		m.healthy.Set(1)
	} else {
		m.healthy.Set(0)
	}
	if version > 0 {
		m.keyVersion.Set(float64(version))
	}
}
