package scan_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cofferhq/coffer/internal/scan"
	"github.com/cofferhq/coffer/internal/scan/scantest"
)

// BenchmarkScanDir scans a directory of typical source text (100 MB by
// default; COFFER_BENCH_MB overrides) with all cores and reports MB/s of
// wall time, MB per CPU-second (what one core sustains, independent of
// other load on the machine) and the process's peak RSS.
func BenchmarkScanDir(b *testing.B) {
	mb := 100
	if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	g := scantest.NewGen(11)
	var total int64
	exts := []string{".go", ".py", ".js", ".yaml", ".md", ".tf", ".sh", ".java"}
	for i := 0; total < int64(mb)<<20; i++ {
		size := 4<<10 + g.Rand().IntN(60<<10)
		if i%500 == 0 {
			size = 4 << 20 // some large files
		}
		p := filepath.Join(dir, fmt.Sprintf("pkg%03d", i%97), fmt.Sprintf("file%05d%s", i, exts[i%len(exts)]))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.TypicalSource(f, size); err != nil {
			b.Fatal(err)
		}
		st, _ := f.Stat()
		total += st.Size()
		f.Close()
	}
	b.SetBytes(total)
	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	b.ResetTimer()
	for b.Loop() {
		res, err := scan.Run(b.Context(), scan.Options{Paths: []string{dir}})
		if err != nil {
			b.Fatalf("Run: %v (%d findings)", err, len(res.Findings))
		}
	}
	b.StopTimer()
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	cpuSec := tv(cpu1.Utime) + tv(cpu1.Stime) - tv(cpu0.Utime) - tv(cpu0.Stime)
	if cpuSec > 0 {
		b.ReportMetric(float64(total)*float64(b.N)/1e6/cpuSec, "MB/cpu-s")
	}
	if rss := peakRSS(); rss > 0 {
		b.ReportMetric(float64(rss)/1024, "peak-RSS-MB")
	}
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// peakRSS reads VmHWM (kB) from /proc/self/status.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkScanLargeFile streams one large file (COFFER_BENCH_BIG_MB,
// default 256) to show memory does not grow with file size.
func BenchmarkScanLargeFile(b *testing.B) {
	mb := 256
	if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_BIG_MB")); err == nil && v > 0 {
		mb = v
	}
	p := filepath.Join(b.TempDir(), "big.log")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if err := scantest.NewGen(12).TypicalSource(f, mb<<20); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	b.SetBytes(st.Size())
	for b.Loop() {
		if _, err := scan.Run(b.Context(), scan.Options{Paths: []string{p}}); err != nil {
			b.Fatal(err)
		}
	}
	if rss := peakRSS(); rss > 0 {
		b.ReportMetric(float64(rss)/1024, "peak-RSS-MB")
	}
}
