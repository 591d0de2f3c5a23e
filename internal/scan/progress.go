package scan

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws one status line, ten times a second, until stopped:
// bytes and inputs scanned, the rate, and a bar once the total is known.
type progress struct {
	w      io.Writer
	bytes  *atomic.Int64
	items  *atomic.Int64
	total  atomic.Int64 // bytes discovered (sizes known up front)
	count  atomic.Int64 // items discovered
	final  atomic.Bool  // discovery finished: total is exact
	start  time.Time
	done   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once
}

func startProgress(w io.Writer, bytes, items *atomic.Int64) *progress {
	p := &progress{w: w, bytes: bytes, items: items, start: time.Now(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() { // owner: stop waits for it
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				fmt.Fprint(p.w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprint(p.w, "\r\033[K"+p.line(80))
			}
		}
	}()
	return p
}

func (p *progress) discovered(size int64) {
	p.count.Add(1)
	if size > 0 {
		p.total.Add(size)
	}
}

func (p *progress) doneDiscovering() { p.final.Store(true) }

func (p *progress) stop() {
	p.closed.Do(func() { close(p.done) })
	p.wg.Wait()
}

func (p *progress) line(width int) string {
	b, n := p.bytes.Load(), p.items.Load()
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b) / 1e6 / el
	}
	total, count := p.total.Load(), p.count.Load()
	stats := fmt.Sprintf(" %d/%d files  %s/%s  %.0f MB/s", n, count, human(b), human(total), rate)
	frac := 0.0
	if total > 0 {
		frac = min(1, float64(b)/float64(total))
	}
	barW := max(10, width-len(stats)-len("scanning [] 100%"))
	fill := int(frac * float64(barW))
	return fmt.Sprintf("scanning [%s%s] %3.0f%%%s", strings.Repeat("=", fill), strings.Repeat(" ", barW-fill), frac*100, stats)
}

func human(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fGB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fMB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fkB", float64(n)/1e3)
	}
	return fmt.Sprintf("%dB", n)
}
