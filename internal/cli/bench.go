package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/api"
)

type benchOpts struct {
	concurrency int
	duration    time.Duration
	op          string
	keys        int
	valueSize   int
	mount       string
	prefix      string
	readRatio   float64
	procs       int
}

// BenchResult is what `coffer bench kv` reports.
type BenchResult struct {
	Op          string  `json:"op"`
	Concurrency int     `json:"concurrency"`
	Procs       int     `json:"procs"`
	Duration    string  `json:"duration"`
	Ops         int     `json:"ops"`
	Errors      int     `json:"errors"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	P50Ms       float64 `json:"p50_ms"`
	P95Ms       float64 `json:"p95_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Load-test a coffer (or Vault-compatible) server"}
	var o benchOpts
	kv := &cobra.Command{
		Use:   "kv",
		Short: "Read and write KV v2 secrets as fast as the server allows",
		Long: `Read and write KV v2 secrets as fast as the server allows, from -concurrency clients
for -duration, and report throughput and latency percentiles.

  coffer bench kv -concurrency 16 -duration 30s -op read -keys 1000 -value-size 256`,
		Args: maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch o.op {
			case "read", "write", "mixed":
			default:
				return usagef("-op %q: want read, write or mixed", o.op)
			}
			if o.concurrency < 1 || o.keys < 1 || o.valueSize < 1 || o.duration <= 0 {
				return usagef("-concurrency, -keys, -value-size and -duration must be positive")
			}
			if o.procs < 0 {
				return usagef("-procs must be positive")
			}
			if o.procs == 0 {
				o.procs = max(1, runtime.NumCPU()/2)
			}
			// The load generator usually shares the machine with the
			// server: with as many threads as cores, the two contend for
			// every core and the scheduler's time slices show up as
			// multi-millisecond tails that are not the server's.
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.procs))
			c, err := e.client()
			if err != nil {
				return err
			}
			res, err := runBenchKV(cmd.Context(), c, o, e)
			if err != nil {
				return err
			}
			if e.outFormat() == "table" {
				return e.print(res, []row{
					{"op", res.Op}, {"concurrency", res.Concurrency}, {"procs", res.Procs}, {"duration", res.Duration},
					{"ops", res.Ops}, {"errors", res.Errors}, {"ops/s", fmt.Sprintf("%.0f", res.OpsPerSec)},
					{"p50", fmt.Sprintf("%.2f ms", res.P50Ms)}, {"p95", fmt.Sprintf("%.2f ms", res.P95Ms)},
					{"p99", fmt.Sprintf("%.2f ms", res.P99Ms)}, {"max", fmt.Sprintf("%.2f ms", res.MaxMs)},
				})
			}
			return e.print(res, nil)
		},
	}
	fl := kv.Flags()
	fl.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients")
	fl.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run")
	fl.StringVar(&o.op, "op", "read", "read, write or mixed")
	fl.IntVar(&o.keys, "keys", 1000, "distinct keys")
	fl.IntVar(&o.valueSize, "value-size", 256, "bytes per value")
	fl.StringVar(&o.mount, "mount", "secret", "KV v2 mount")
	fl.StringVar(&o.prefix, "prefix", "bench", "key prefix")
	fl.Float64Var(&o.readRatio, "read-ratio", 0.9, "share of reads for -op mixed")
	fl.IntVar(&o.procs, "procs", 0, "CPUs the load generator may use at once (GOMAXPROCS; default half the machine's, at least 1)")
	cmd.AddCommand(kv)
	return cmd
}

func benchValue(size int) string {
	b := make([]byte, size*3/4+1)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)[:size]
}

func runBenchKV(ctx context.Context, c *api.Client, o benchOpts, e *env) (*BenchResult, error) {
	mount := strings.Trim(o.mount, "/")
	path := func(i int) string { return fmt.Sprintf("%s/data/%s/k%06d", mount, o.prefix, i) }
	value := benchValue(o.valueSize)
	if o.op != "write" {
		fmt.Fprintf(e.stderr, "coffer bench: writing %d keys to read...\n", o.keys)
		if err := parallel(ctx, o.concurrency, o.keys, func(i int) error {
			_, err := c.Logical().Write(ctx, path(i), map[string]any{"data": map[string]any{"v": value}})
			return err
		}); err != nil {
			return nil, fmt.Errorf("prepare keys: %w", err)
		}
	}
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	type worker struct {
		lat   []time.Duration
		errs  int
		first string
	}
	ws := make([]worker, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(start.UnixNano())))
			me := &ws[w]
			me.lat = make([]time.Duration, 0, 1<<14)
			for runCtx.Err() == nil {
				i := rng.IntN(o.keys)
				read := o.op == "read" || (o.op == "mixed" && rng.Float64() < o.readRatio)
				t0 := time.Now()
				var err error
				if read {
					var s *api.Secret
					s, err = c.Logical().Read(runCtx, path(i), nil)
					if err == nil && s == nil {
						err = fmt.Errorf("key %s not found", path(i))
					}
				} else {
					_, err = c.Logical().Write(runCtx, path(i), map[string]any{"data": map[string]any{"v": value}})
				}
				if runCtx.Err() != nil {
					break
				}
				if err != nil {
					me.errs++
					if me.first == "" {
						me.first = err.Error()
					}
					continue
				}
				me.lat = append(me.lat, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	res := &BenchResult{Op: o.op, Concurrency: o.concurrency, Procs: runtime.GOMAXPROCS(0), Duration: elapsed.Round(time.Millisecond).String()}
	for _, w := range ws {
		all = append(all, w.lat...)
		res.Errors += w.errs
		if res.FirstError == "" {
			res.FirstError = w.first
		}
	}
	slices.Sort(all)
	res.Ops = len(all)
	res.OpsPerSec = float64(len(all)) / elapsed.Seconds()
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(math.Ceil(p*float64(len(all)))) - 1
		return float64(all[max(i, 0)]) / float64(time.Millisecond)
	}
	res.P50Ms, res.P95Ms, res.P99Ms, res.MaxMs = pct(0.50), pct(0.95), pct(0.99), pct(1)
	return res, nil
}

// parallel runs fn(0..n-1) on k goroutines and returns the first error.
func parallel(ctx context.Context, k, n int, fn func(int) error) error {
	var mu sync.Mutex
	var first error
	next := 0
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= n || first != nil || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
