package bolt

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/cofferhq/coffer/internal/storage"
)

func BenchmarkGet(b *testing.B) {
	s, _ := newTestBackend(b, Options{})
	ops := make([]storage.Op, 1000)
	for i := range ops {
		ops[i] = storage.Put(fmt.Sprintf("bench/%04d", i), make([]byte, 128))
	}
	if err := s.Txn(b.Context(), ops); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(b.Context(), ops[i%len(ops)].Key); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPut is one writer, one fsync per Put.
func BenchmarkPut(b *testing.B) {
	s, _ := newTestBackend(b, Options{})
	v := make([]byte, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Put(b.Context(), fmt.Sprintf("bench/%04d", i%1000), v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkBboltUpdate is the baseline for BenchmarkPut: one bare bbolt
// Update per write on the same kind of file, with no commit loop.
func BenchmarkBboltUpdate(b *testing.B) {
	s, _ := newTestBackend(b, Options{})
	v := make([]byte, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketName).Put(fmt.Appendf(nil, "bench/%04d", i%1000), v)
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// commitCounter is a slog.Handler that counts the commit loop's debug
// records, to report how many requests each commit carried.
type commitCounter struct {
	commits, requests atomic.Int64
}

func (c *commitCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *commitCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *commitCounter) WithGroup(string) slog.Handler            { return c }
func (c *commitCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "commit" {
		return nil
	}
	c.commits.Add(1)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "requests" {
			c.requests.Add(a.Value.Int64())
		}
		return true
	})
	return nil
}

// BenchmarkPutConcurrent runs b.N Puts from a fixed number of writers.
// Group commit should make throughput (ops/s) rise with writers, since
// each fsync carries more Puts (reqs/commit).
func BenchmarkPutConcurrent(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			var count commitCounter
			s, _ := newTestBackend(b, Options{Logger: slog.New(&count)})
			v := make([]byte, 128)
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if err := s.Put(b.Context(), fmt.Sprintf("bench/%06d", i%100000), v); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			if c := count.commits.Load(); c > 0 {
				b.ReportMetric(float64(count.requests.Load())/float64(c), "reqs/commit")
			}
		})
	}
}

// BenchmarkList lists ten children. With subtrees under each child, List
// still costs about one seek per child, not one step per key.
func BenchmarkList(b *testing.B) {
	for _, below := range []int{0, 1000} {
		b.Run(fmt.Sprintf("keys_below_each_child=%d", below), func(b *testing.B) {
			s, _ := newTestBackend(b, Options{})
			var ops []storage.Op
			for c := range 10 {
				ops = append(ops, storage.Put(fmt.Sprintf("l/c%d", c), nil))
				for i := range below {
					ops = append(ops, storage.Put(fmt.Sprintf("l/c%d/sub/%04d", c, i), nil))
				}
			}
			if err := s.Txn(b.Context(), ops); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				names, err := s.List(b.Context(), "l/")
				if err != nil || (below == 0 && len(names) != 10) || (below > 0 && len(names) != 20) {
					b.Fatalf("List = %d names, %v", len(names), err)
				}
			}
		})
	}
}
