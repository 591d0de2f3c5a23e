package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/cofferhq/coffer/api"
)

type benchOpts struct {
	concurrency int
	duration    time.Duration
	rate        int
	op          string
	keys        int
	valueSize   int
	mount       string
	prefix      string
	readRatio   float64
	procs       int
	socket      string
	timeout     time.Duration
}

// BenchResult is what `coffer bench kv` and `coffer bench kms` report.
type BenchResult struct {
	Op          string `json:"op"`
	Concurrency int    `json:"concurrency"`
	Procs       int    `json:"procs"`
	// Rate is the total calls per second asked for (0: as fast as the
	// server answers); Late counts the calls that could not start on
	// schedule because the caller's previous call was still running.
	Rate       int     `json:"rate,omitempty"`
	Late       int     `json:"late,omitempty"`
	Duration   string  `json:"duration"`
	Ops        int     `json:"ops"`
	Errors     int     `json:"errors"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	P50Ms      float64 `json:"p50_ms"`
	P95Ms      float64 `json:"p95_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Load-test a coffer (or Vault-compatible) server or a KMS plugin"}
	cmd.AddCommand(newBenchKVCmd(e), newBenchKMSCmd(e))
	return cmd
}

func newBenchKVCmd(e *env) *cobra.Command {
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
			if o.keys < 1 || o.valueSize < 1 {
				return usagef("-keys and -value-size must be positive")
			}
			if err := o.check(); err != nil {
				return err
			}
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.procs))
			c, err := e.client()
			if err != nil {
				return err
			}
			res, err := runBenchKV(cmd.Context(), c, o, e)
			if err != nil {
				return err
			}
			return e.printBench(res)
		},
	}
	fl := kv.Flags()
	o.flags(fl)
	fl.StringVar(&o.op, "op", "read", "read, write or mixed")
	fl.IntVar(&o.keys, "keys", 1000, "distinct keys")
	fl.IntVar(&o.valueSize, "value-size", 256, "bytes per value")
	fl.StringVar(&o.mount, "mount", "secret", "KV v2 mount")
	fl.StringVar(&o.prefix, "prefix", "bench", "key prefix")
	fl.Float64Var(&o.readRatio, "read-ratio", 0.9, "share of reads for -op mixed")
	return kv
}

func newBenchKMSCmd(e *env) *cobra.Command {
	var o benchOpts
	kms := &cobra.Command{
		Use:   "kms",
		Short: "Call a KMS v2 plugin over its socket as kube-apiserver does",
		Long: `Call a KMS v2 plugin's Encrypt, Decrypt or Status over its unix socket from
-concurrency callers sharing one connection, as kube-apiserver does, and report
throughput and latency percentiles. Encrypt sends a fresh 32-byte seed each call;
Decrypt first encrypts -keys seeds and then decrypts them in turn, checking each
plaintext. With -rate the callers call at that total rate (open loop) instead of
as fast as the plugin answers.

  coffer bench kms -socket /var/run/kmsplugin/coffer.sock -op encrypt -concurrency 16 -duration 30s
  coffer bench kms -socket /var/run/kmsplugin/coffer.sock -op decrypt -rate 4000`,
		Args: maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch o.op {
			case "encrypt", "decrypt", "status":
			default:
				return usagef("-op %q: want encrypt, decrypt or status", o.op)
			}
			if o.socket == "" {
				return usagef("-socket: the plugin's unix socket is required")
			}
			if o.keys < 1 || o.timeout <= 0 {
				return usagef("-keys and -timeout must be positive")
			}
			if err := o.check(); err != nil {
				return err
			}
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.procs))
			res, err := runBenchKMS(cmd.Context(), o, e)
			if err != nil {
				return err
			}
			return e.printBench(res)
		},
	}
	fl := kms.Flags()
	o.flags(fl)
	fl.StringVar(&o.socket, "socket", "", "the plugin's unix socket (required)")
	fl.StringVar(&o.op, "op", "encrypt", "encrypt, decrypt or status")
	fl.IntVar(&o.keys, "keys", 256, "distinct ciphertexts -op decrypt cycles through")
	fl.DurationVar(&o.timeout, "timeout", 3*time.Second, "deadline of each call (kube-apiserver's default KMS timeout is 3s)")
	return kms
}

// flags registers the options every load shares.
func (o *benchOpts) flags(fl *pflag.FlagSet) {
	fl.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients")
	fl.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run")
	fl.IntVar(&o.rate, "rate", 0, "total calls per second, spread over the clients (default: as fast as answered)")
	fl.IntVar(&o.procs, "procs", 0, "CPUs the load generator may use at once (GOMAXPROCS; default half the machine's, at least 1)")
}

// check validates the shared options and settles -procs.
func (o *benchOpts) check() error {
	if o.concurrency < 1 || o.duration <= 0 {
		return usagef("-concurrency and -duration must be positive")
	}
	if o.rate < 0 {
		return usagef("-rate must not be negative")
	}
	if o.procs < 0 {
		return usagef("-procs must be positive")
	}
	if o.procs == 0 {
		// The load generator usually shares the machine with the server:
		// with as many threads as cores, the two contend for every core
		// and the scheduler's time slices show up as multi-millisecond
		// tails that are not the server's.
		o.procs = max(1, runtime.NumCPU()/2)
	}
	return nil
}

func (e *env) printBench(res *BenchResult) error {
	if e.outFormat() != "table" {
		return e.print(res, nil)
	}
	rows := []row{{"op", res.Op}, {"concurrency", res.Concurrency}, {"procs", res.Procs}}
	if res.Rate > 0 {
		rows = append(rows, row{"rate", fmt.Sprintf("%d/s", res.Rate)}, row{"late", res.Late})
	}
	rows = append(rows, []row{
		{"duration", res.Duration}, {"ops", res.Ops}, {"errors", res.Errors}, {"ops/s", fmt.Sprintf("%.0f", res.OpsPerSec)},
		{"p50", fmt.Sprintf("%.2f ms", res.P50Ms)}, {"p95", fmt.Sprintf("%.2f ms", res.P95Ms)},
		{"p99", fmt.Sprintf("%.2f ms", res.P99Ms)}, {"max", fmt.Sprintf("%.2f ms", res.MaxMs)},
	}...)
	if res.FirstError != "" {
		rows = append(rows, row{"first error", res.FirstError})
	}
	return writeTable(e.stdout, rows)
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
	return runLoad(ctx, o, func(ctx context.Context, rng *mrand.Rand) error {
		i := rng.IntN(o.keys)
		if o.op == "read" || (o.op == "mixed" && rng.Float64() < o.readRatio) {
			s, err := c.Logical().Read(ctx, path(i), nil)
			if err == nil && s == nil {
				err = fmt.Errorf("key %s not found", path(i))
			}
			return err
		}
		_, err := c.Logical().Write(ctx, path(i), map[string]any{"data": map[string]any{"v": value}})
		return err
	}), nil
}

// runBenchKMS calls the plugin on o.socket over one gRPC connection, the
// way kube-apiserver's KMS v2 client does.
func runBenchKMS(ctx context.Context, o benchOpts, e *env) (*BenchResult, error) {
	conn, err := grpc.NewClient("unix://"+o.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("-socket %s: %w", o.socket, err)
	}
	defer conn.Close()
	kms := kmsapi.NewKeyManagementServiceClient(conn)
	call := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, o.timeout)
	}
	cctx, cancel := call(ctx)
	st, err := kms.Status(cctx, &kmsapi.StatusRequest{})
	cancel()
	switch {
	case err != nil:
		return nil, fmt.Errorf("plugin on %s: status: %w", o.socket, err)
	case st.Healthz != "ok":
		return nil, fmt.Errorf("plugin on %s is not healthy: %s", o.socket, st.Healthz)
	}
	seed := func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return b
	}
	var op func(context.Context, *mrand.Rand) error
	switch o.op {
	case "status":
		op = func(ctx context.Context, _ *mrand.Rand) error {
			st, err := kms.Status(ctx, &kmsapi.StatusRequest{})
			if err == nil && st.Healthz != "ok" {
				err = fmt.Errorf("plugin is not healthy: %s", st.Healthz)
			}
			return err
		}
	case "encrypt":
		op = func(ctx context.Context, _ *mrand.Rand) error {
			_, err := kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed(), Uid: "coffer-bench"})
			return err
		}
	case "decrypt":
		fmt.Fprintf(e.stderr, "coffer bench: encrypting %d seeds to decrypt...\n", o.keys)
		reqs := make([]*kmsapi.DecryptRequest, o.keys)
		plain := make([][]byte, o.keys)
		if err := parallel(ctx, o.concurrency, o.keys, func(i int) error {
			cctx, cancel := call(ctx)
			defer cancel()
			plain[i] = seed()
			r, err := kms.Encrypt(cctx, &kmsapi.EncryptRequest{Plaintext: plain[i], Uid: "coffer-bench"})
			if err != nil {
				return err
			}
			reqs[i] = &kmsapi.DecryptRequest{Ciphertext: r.Ciphertext, KeyId: r.KeyId, Annotations: r.Annotations, Uid: "coffer-bench"}
			return nil
		}); err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("prepare ciphertexts: %w", err)
		}
		op = func(ctx context.Context, rng *mrand.Rand) error {
			i := rng.IntN(o.keys)
			r, err := kms.Decrypt(ctx, reqs[i])
			if err == nil && !bytes.Equal(r.Plaintext, plain[i]) {
				err = errors.New("decrypt returned another plaintext than was encrypted")
			}
			return err
		}
	}
	return runLoad(ctx, o, func(ctx context.Context, rng *mrand.Rand) error {
		ctx, cancel := call(ctx)
		defer cancel()
		return op(ctx, rng)
	}), nil
}

// runLoad calls op from o.concurrency workers until o.duration has
// passed, back to back or, with o.rate, each on a fixed schedule, and
// reports throughput and latency percentiles. A call's latency counts
// from its start.
func runLoad(ctx context.Context, o benchOpts, op func(context.Context, *mrand.Rand) error) *BenchResult {
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	type worker struct {
		lat   []time.Duration
		errs  int
		late  int
		first string
	}
	ws := make([]worker, o.concurrency)
	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(o.concurrency) * time.Second / time.Duration(o.rate)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range ws {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(start.UnixNano())))
			me := &ws[w]
			me.lat = make([]time.Duration, 0, 1<<14)
			// Spread the callers' schedules over one interval.
			due := start.Add(interval * time.Duration(w) / time.Duration(o.concurrency))
			for runCtx.Err() == nil {
				if interval > 0 {
					if d := time.Until(due); d > 0 {
						select {
						case <-time.After(d):
						case <-runCtx.Done():
							return
						}
					} else if d < -interval {
						me.late++
					}
					due = due.Add(interval)
				}
				t0 := time.Now()
				err := op(runCtx, rng)
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
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	res := &BenchResult{Op: o.op, Concurrency: o.concurrency, Procs: runtime.GOMAXPROCS(0), Rate: o.rate,
		Duration: elapsed.Round(time.Millisecond).String()}
	for _, w := range ws {
		all = append(all, w.lat...)
		res.Errors += w.errs
		res.Late += w.late
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
	return res
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
